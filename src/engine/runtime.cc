// The public Runtime, Engine and ExecutionContext. An Engine is the deserialized graph with
// its tactics; its weights alias the engine bytes (kept alive by the engine). Each
// ExecutionContext holds its own input shapes, tensor addresses and profile choice, so several
// can run one engine at once.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>

#include "backends/registry.h"
#include "core/mapped_file.h"
#include "engine/api_logging.h"
#include "engine/engine_file.h"
#include "engine/host_layer.h"
#include "engine/shape_eval.h"
#include "kiln/runtime.h"

namespace kiln {

class EngineImpl {
 public:
  engine::EngineModel model;
  std::unique_ptr<BackendEngine> backend;
  Logger* logger = nullptr;
  // Loaded from a file: the weights alias its mapping. A file truncated in place since would
  // raise SIGBUS at the next read (and one rewritten in place shows other weights), so contexts
  // and runs check it first.
  std::shared_ptr<const MappedFile> file;
  Status check_file() const {
    if (!file) return Status::ok();
    Status s = file->check_unchanged();
    if (!s) return err("engine file ", s.message(), "; load the engine again");
    return Status::ok();
  }
  const Value* io(const std::string& name) const {
    for (const Value* v : model.graph->inputs) if (v->name == name) return v;
    for (const Value* v : model.graph->outputs) if (v->name == name) return v;
    return nullptr;
  }
  bool is_input(const Value* v) const { return v && v->is_graph_input; }
};

// Forwards the backend's per-layer times to the user's Profiler.
class ProfilerAdapter : public LayerTimer {
 public:
  explicit ProfilerAdapter(Profiler* p) : p_(p) {}
  void layer_time(const Node& n, float ms) override { p_->reportLayerTime(n.name.c_str(), ms); }

 private:
  Profiler* p_;
};

class ContextImpl {
 public:
  EngineImpl* engine = nullptr;
  std::unique_ptr<BackendContext> backend;
  int profile = 0;
  std::map<std::string, std::vector<int64_t>> input_dims;
  std::map<std::string, void*> addresses;
  std::map<std::string, OutputAllocator*> allocators;
  Profiler* profiler = nullptr;
  std::unique_ptr<ValueShapes> shapes;  // for the current input_dims; reset when they change

  Logger& logger() { return *engine->logger; }
  const engine::ProfileShapes* range(const std::string& input) const {
    for (const auto& p : engine->model.profiles.at(profile)) if (p.input == input) return &p;
    return nullptr;
  }
  Status ensure_shapes();
  Status run(void* stream);
  std::string input_shapes() const;  // "'x' 8x3x224x224, 'mask' 8x128"
};

std::string ContextImpl::input_shapes() const {
  std::string s;
  for (const auto& [name, dims] : input_dims) s += (s.empty() ? "'" : ", '") + name + "' " + dimsToString(dims);
  return s;
}

Status ContextImpl::ensure_shapes() {
  if (shapes) return Status::ok();
  for (const Value* in : engine->model.graph->inputs)
    if (!input_dims.count(in->name))
      return err("input '", in->name, "' has dynamic shape ", in->shape.to_string(), ": call setInputShape first");
  KILN_ASSIGN_OR_RETURN(auto s, engine::evaluate_shapes(*engine->model.graph, input_dims));
  auto next = std::make_unique<ValueShapes>(std::move(s));
  Status prepared = backend->prepare(*next);
  if (!prepared) return prepared.with_context("input shapes " + input_shapes() + ": ");
  shapes = std::move(next);
  return Status::ok();
}

Status ContextImpl::run(void* stream) {
  KILN_RETURN_IF_ERROR(engine->check_file());
  KILN_RETURN_IF_ERROR(ensure_shapes());
  ProfilerAdapter timer(profiler);
  for (const Value* out : engine->model.graph->outputs)
    if ((!addresses.count(out->name) || !addresses[out->name]) && !allocators.count(out->name))
      return err("output '", out->name, "' has no address (setTensorAddress or setOutputAllocator)");
  // Outputs whose size is known only after the run get memory from the caller's allocator.
  OutputSink sink = [this](const Value& out, const std::vector<int64_t>& dims, size_t bytes) -> Expected<void*> {
    auto a = allocators.find(out.name);
    if (a == allocators.end())
      return err("output '", out.name, "' came out as ", dims_to_string(dims),
                 ", which its reported shape did not fix: give it an OutputAllocator");
    void* p = a->second->reallocateOutput(out.name.c_str(), addresses[out.name], bytes, 256);
    if (!p && bytes) return err("the output allocator of '", out.name, "' returned no memory");
    addresses[out.name] = p;
    a->second->notifyShape(out.name.c_str(), dims);
    return p;
  };
  return backend->enqueue(addresses, stream, profiler ? &timer : nullptr, sink);
}

// ---- ExecutionContext ----

ExecutionContext::ExecutionContext(std::unique_ptr<ContextImpl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

bool ExecutionContext::setInputShape(const std::string& name, const Dims& dims) {
  const Value* v = impl_->engine->io(name);
  if (!impl_->engine->is_input(v)) {
    log_error(impl_->logger(), "setInputShape: '" + name + "' is not an input of the engine");
    return false;
  }
  const auto* r = impl_->range(name);
  bool ok = r && dims.size() == r->min.size();
  for (size_t k = 0; ok && k < dims.size(); ++k) ok = dims[k] >= r->min[k] && dims[k] <= r->max[k];
  if (!ok) {
    log_error(impl_->logger(), "setInputShape: shape " + dimsToString(dims) + " of input '" + name +
                                   "' is outside optimization profile " + std::to_string(impl_->profile) + ": min " +
                                   dimsToString(r ? r->min : Dims{}) + ", max " + dimsToString(r ? r->max : Dims{}));
    return false;
  }
  auto& now = impl_->input_dims[name];
  if (now == dims && impl_->shapes) return true;  // the same shape again (a serving loop's every call): the prepared plan stands
  now = dims;
  impl_->shapes.reset();
  return true;
}

Dims ExecutionContext::getTensorShape(const std::string& name) const {
  const Value* v = impl_->engine->io(name);
  if (!v) return {};
  bool known = false;
  try {
    known = impl_->ensure_shapes().is_ok();
  } catch (const std::bad_alloc&) {
  }
  if (known) {
    auto it = impl_->shapes->dims.find(v);
    if (it != impl_->shapes->dims.end()) return it->second;
  }
  // Known only once the run has computed it: -1 dims, or {-1} when even the rank is unknown.
  if (!v->shape.rank_known()) return {-1};
  Dims d;
  for (const Dim& x : v->shape.dims()) d.push_back(x.is_static() ? x.value() : -1);
  return d;
}

bool ExecutionContext::setTensorAddress(const std::string& name, void* ptr) {
  if (!impl_->engine->io(name)) {
    log_error(impl_->logger(), "setTensorAddress: '" + name + "' is not an input or output of the engine");
    return false;
  }
  impl_->addresses[name] = ptr;
  return true;
}

bool ExecutionContext::setOutputAllocator(const std::string& name, OutputAllocator* allocator) {
  const Value* v = impl_->engine->io(name);
  if (!v || impl_->engine->is_input(v)) {
    log_error(impl_->logger(), "setOutputAllocator: '" + name + "' is not an output of the engine");
    return false;
  }
  if (allocator) impl_->allocators[name] = allocator;
  else impl_->allocators.erase(name);
  return true;
}

bool ExecutionContext::execute() { return enqueue(nullptr); }

bool ExecutionContext::enqueue(void* stream) {
  Status s;
  try {
    s = impl_->run(stream);
  } catch (const std::bad_alloc&) {
    s = err("out of memory on the host while running the engine at input shapes ", impl_->input_shapes());
  }
  if (!s) log_error(impl_->logger(), s.message());
  return s.is_ok();
}

bool ExecutionContext::setOptimizationProfile(int index) {
  if (index < 0 || index >= static_cast<int>(impl_->engine->model.profiles.size())) {
    log_error(impl_->logger(), "setOptimizationProfile: profile " + std::to_string(index) + " does not exist (engine has " +
                                   std::to_string(impl_->engine->model.profiles.size()) + ")");
    return false;
  }
  impl_->profile = index;
  impl_->input_dims.clear();
  for (const auto& p : impl_->engine->model.profiles[index])
    if (p.min == p.max) impl_->input_dims[p.input] = p.min;  // static inputs need no setInputShape
  impl_->shapes.reset();
  return true;
}

int ExecutionContext::getOptimizationProfile() const { return impl_->profile; }
void ExecutionContext::setProfiler(Profiler* p) { impl_->profiler = p; }

// ---- Engine ----

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

int Engine::getNbIOTensors() const {
  return static_cast<int>(impl_->model.graph->inputs.size() + impl_->model.graph->outputs.size());
}
std::string Engine::getIOTensorName(int i) const {
  const Graph& g = *impl_->model.graph;
  if (i < 0 || i >= getNbIOTensors()) return "";
  return i < static_cast<int>(g.inputs.size()) ? g.inputs[i]->name : g.outputs[i - g.inputs.size()]->name;
}
TensorIOMode Engine::getTensorIOMode(const std::string& name) const {
  const Value* v = impl_->io(name);
  return !v ? TensorIOMode::kNONE : v->is_graph_input ? TensorIOMode::kINPUT : TensorIOMode::kOUTPUT;
}
TensorType Engine::getTensorDataType(const std::string& name) const {
  const Value* v = impl_->io(name);
  return static_cast<TensorType>(v ? v->dtype : DataType::kUndefined);
}
Dims Engine::getTensorShape(const std::string& name) const {
  const Value* v = impl_->io(name);
  Dims d;
  if (v && v->shape.rank_known())
    for (const Dim& x : v->shape.dims()) d.push_back(x.is_static() ? x.value() : -1);
  return d;
}
int Engine::getNbOptimizationProfiles() const { return static_cast<int>(impl_->model.profiles.size()); }
Dims Engine::getProfileShape(const std::string& input, int profile, OptProfileSelector which) const {
  if (profile < 0 || profile >= getNbOptimizationProfiles()) return {};
  for (const auto& p : impl_->model.profiles[profile])
    if (p.input == input) return which == OptProfileSelector::kMIN ? p.min : which == OptProfileSelector::kOPT ? p.opt : p.max;
  return {};
}
size_t Engine::getDeviceMemorySize() const { return impl_->model.activation_bytes; }
int Engine::getNbLayers() const { return static_cast<int>(impl_->model.graph->nodes().size()); }
LayerInfo Engine::getLayerInformation(int i) const {
  LayerInfo info;
  const auto& nodes = impl_->model.graph->nodes();
  if (i < 0 || i >= static_cast<int>(nodes.size())) return info;
  const Node& n = *nodes[i];
  info.name = n.name;
  info.op_type = n.domain.empty() ? n.op_type : n.domain + "." + n.op_type;
  info.tactic = impl_->model.tactics[i];
  info.precision = impl_->model.precisions[i];
  if (static_cast<size_t>(i) < impl_->model.timings.size()) {
    const auto& t = impl_->model.timings[i];
    info.tactic_candidates = t.candidates;
    info.tactic_ms = t.ms;
    info.runner_up = t.runner_up;
    info.runner_up_ms = t.runner_up_ms;
    info.heuristic_tactic = t.heuristic;
    info.heuristic_ms = t.heuristic_ms;
  }
  for (const Value* v : n.inputs) info.inputs.push_back(v ? v->name : "");
  for (const Value* v : n.outputs) info.outputs.push_back(v ? v->name : "");
  return info;
}
std::string Engine::getBackend() const { return impl_->model.backend; }

std::unique_ptr<ExecutionContext> Engine::createExecutionContext() try {
  if (Status s = impl_->check_file(); !s) {
    log_error(*impl_->logger, "createExecutionContext: " + s.message());
    return nullptr;
  }
  auto c = std::make_unique<ContextImpl>();
  c->engine = impl_.get();
  auto backend = impl_->backend->create_context();
  if (!backend) {
    log_error(*impl_->logger, "createExecutionContext: " + backend.status().message());
    return nullptr;
  }
  c->backend = std::move(backend).value();
  std::unique_ptr<ExecutionContext> ctx(new ExecutionContext(std::move(c)));
  if (!impl_->model.profiles.empty()) ctx->setOptimizationProfile(0);
  return ctx;
} catch (const std::bad_alloc&) {
  log_error(*impl_->logger, "createExecutionContext: out of memory on the host");
  return nullptr;
}

// ---- Runtime ----

namespace {
Expected<std::unique_ptr<EngineImpl>> load(std::shared_ptr<const std::byte> data, size_t size, Logger& logger) {
  KILN_ASSIGN_OR_RETURN(engine::EngineModel model, engine::deserialize(std::move(data), size));
  if (model.profiles.empty()) return err("engine has no optimization profile; rebuild the engine");
  auto impl = std::make_unique<EngineImpl>();
  impl->model = std::move(model);
  impl->logger = &logger;
  const auto& m = impl->model;
  const BackendProvider* backend = BackendRegistry::global().find(m.backend);
  if (!backend)
    return err("engine was built for the '", m.backend, "' backend (", m.device_name,
               "), which this build of kiln does not have");
  DeviceRecord built;
  built.name = m.device_name;
  built.cc_major = m.cc_major;
  built.cc_minor = m.cc_minor;
  built.libraries = m.device_libraries;
  KILN_RETURN_IF_ERROR(backend->check_device(built));
  BackendOptions opts;
  opts.workspace_bytes = m.options.workspace_bytes;  // --memPoolSize=workspace:N, 256 MiB by default
  opts.tf32 = m.options.tf32;
  KILN_ASSIGN_OR_RETURN(impl->backend, backend->create_engine(*m.graph, m.tactics, opts, engine::host_layer()));
  return impl;
}
}  // namespace

std::unique_ptr<Engine> Runtime::deserialize(const void* data, size_t size) {
  ScopedLogger route(logger_);
  try {
    // The engine keeps its own copy of the bytes; weights alias it.
    auto copy = std::shared_ptr<std::byte[]>(new std::byte[size ? size : 1]);
    if (size) std::memcpy(copy.get(), data, size);
    auto impl = load(std::shared_ptr<const std::byte>(copy, copy.get()), size, logger_);
    if (!impl) {
      log_error(logger_, "cannot load engine: " + impl.status().message());
      return nullptr;
    }
    return std::unique_ptr<Engine>(new Engine(std::move(impl).value()));
  } catch (const std::bad_alloc&) {
    log_error(logger_, "cannot load engine: out of memory on the host (an engine of " + std::to_string(size) + " bytes)");
    return nullptr;
  }
}

std::unique_ptr<Engine> Runtime::deserializeFromFile(const std::string& path) {
  ScopedLogger route(logger_);
  auto file = MappedFile::open(path, /*keep_open=*/true);  // checked before each run: one fstat
  if (!file) {
    log_error(logger_, "cannot load engine: " + file.status().message());
    return nullptr;
  }
  const auto& f = *file;
  try {
    // Weights alias the mapping: loading copies nothing.
    auto impl = load(std::shared_ptr<const std::byte>(f, f->data()), f->size(), logger_);
    if (!impl) {
      log_error(logger_, "cannot load engine '" + path + "': " + impl.status().message());
      return nullptr;
    }
    impl.value()->file = f;
    return std::unique_ptr<Engine>(new Engine(std::move(impl).value()));
  } catch (const std::bad_alloc&) {
    log_error(logger_, "cannot load engine '" + path + "': out of memory on the host");
    return nullptr;
  }
}

}  // namespace kiln
