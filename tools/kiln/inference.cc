// The inference run: contexts, the trtexec timing loop, --streams threads, profiling.
#include "tools/kiln/inference.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace kiln::cli {
namespace {

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::vector<std::string> inputs_of(const Engine& e) {
  std::vector<std::string> v;
  for (int i = 0; i < e.getNbIOTensors(); ++i)
    if (e.getTensorIOMode(e.getIOTensorName(i)) == TensorIOMode::kINPUT) v.push_back(e.getIOTensorName(i));
  return v;
}

// A tensor's address for the context: empty tensors get a valid non-null one.
void* address_of(const HostTensor& t) {
  static uint8_t empty;
  return t.bytes.empty() ? &empty : const_cast<uint8_t*>(t.bytes.data());
}

// Grows a host tensor to what the run produced, for outputs of data-dependent shape.
class HostAllocator : public OutputAllocator {
 public:
  explicit HostAllocator(HostTensor* t) : t_(t) {}
  void* reallocateOutput(const char*, void*, uint64_t size, uint64_t) noexcept override {
    try { t_->bytes.resize(size); } catch (...) { return nullptr; }
    return address_of(*t_);
  }
  void notifyShape(const char*, const Dims& dims) noexcept override { t_->dims = dims; }

 private:
  HostTensor* t_;
};

// A context with its input shapes set, inputs bound, and its own output buffers.
struct BoundContext {
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<HostTensor> outputs;
  std::vector<std::unique_ptr<HostAllocator>> allocators;
};

BoundContext bind(Engine& e, const std::vector<HostTensor>& inputs, int profile, CliLogger& logger) {
  BoundContext b;
  b.ctx = e.createExecutionContext();
  if (!b.ctx || !b.ctx->setOptimizationProfile(profile)) logger.fail_api("cannot create an execution context");
  for (const HostTensor& in : inputs) {
    if (!b.ctx->setInputShape(in.name, in.dims)) logger.fail_api("invalid run-time shape (--shapes, or the profile's opt)");
    b.ctx->setTensorAddress(in.name, address_of(in));
  }
  for (int i = 0; i < e.getNbIOTensors(); ++i) {
    std::string name = e.getIOTensorName(i);
    if (e.getTensorIOMode(name) != TensorIOMode::kOUTPUT) continue;
    HostTensor t{name, e.getTensorDataType(name), b.ctx->getTensorShape(name), {}};
    if (!std::count(t.dims.begin(), t.dims.end(), -1)) t.bytes.resize(volume(t.dims) * tensorTypeSize(t.type));
    b.outputs.push_back(std::move(t));
  }
  for (HostTensor& t : b.outputs) {  // sized now, or (data-dependent shape) by the run
    if (!std::count(t.dims.begin(), t.dims.end(), -1)) {
      b.ctx->setTensorAddress(t.name, address_of(t));
      continue;
    }
    b.allocators.push_back(std::make_unique<HostAllocator>(&t));
    b.ctx->setOutputAllocator(t.name, b.allocators.back().get());
  }
  return b;
}

Dims runtime_shape(const Engine& e, const std::string& name, const Options& o) {
  if (auto it = o.shapes.find(name); it != o.shapes.end()) return it->second;
  Dims d = e.getTensorShape(name);
  if (std::count(d.begin(), d.end(), -1)) d = e.getProfileShape(name, o.profile, OptProfileSelector::kOPT);
  return d;
}

// One stream's timing loop: warm-up, then at least --iterations queries and --duration seconds.
void time_stream(BoundContext& b, const Options& o, Clock::time_point t0, Profiler* prof, std::vector<QueryTime>& out,
                 std::string& error) {
  auto warm_start = Clock::now();
  while (ms_between(warm_start, Clock::now()) < o.warmup_ms)
    if (!b.ctx->enqueue(nullptr)) { error = "warm-up run failed"; return; }
  b.ctx->setProfiler(prof);  // profile the timed queries only, not the warm-up
  auto start = Clock::now();
  for (int n = 0; n < o.iterations || ms_between(start, Clock::now()) < o.duration_s * 1000; ++n) {
    auto s = Clock::now();
    if (!b.ctx->enqueue(nullptr)) { error = "inference failed"; return; }
    out.push_back(QueryTime::host(ms_between(t0, s), ms_between(t0, Clock::now())));
  }
}

void profile_run(BoundContext& b, const Options& o, LayerProfiler& prof, CliLogger& logger) {
  b.ctx->setProfiler(&prof);
  for (int i = 0; i < o.iterations; ++i)
    if (!b.ctx->execute()) logger.fail_api("profiling run failed");
  prof.profile().runs += o.iterations;
  b.ctx->setProfiler(nullptr);
}

}  // namespace

std::vector<HostTensor> prepare_inputs(Engine& e, const Options& o, CliLogger& logger) {
  auto names = inputs_of(e);
  if (o.profile >= e.getNbOptimizationProfiles())
    fail("--profile=", o.profile, ": the engine has ", e.getNbOptimizationProfiles(), " optimization profile(s)");
  for (const auto* m : {&o.shapes}) for (const auto& [name, _] : *m)
    if (std::find(names.begin(), names.end(), name) == names.end())
      fail("--shapes: the engine has no input named '", name, "' (its inputs: ", join(names, ", "), ")");
  for (const auto& [name, _] : o.load_inputs)
    if (std::find(names.begin(), names.end(), name) == names.end())
      fail("--loadInputs: the engine has no input named '", name, "' (its inputs: ", join(names, ", "), ")");
  std::vector<HostTensor> inputs;
  for (const std::string& name : names) {
    HostTensor t{name, e.getTensorDataType(name), runtime_shape(e, name, o), {}};
    t.bytes.resize(volume(t.dims) * tensorTypeSize(t.type));
    std::string how = "from '" + (o.load_inputs.count(name) ? o.load_inputs.at(name) : "") + "'";
    if (o.load_inputs.count(name)) load_raw(t, o.load_inputs.at(name));
    else how = fill_random(t);
    info("Input '" + name + "': " + tensorTypeName(t.type) + " " + dimsToString(t.dims) + ", " + how);
    inputs.push_back(std::move(t));
  }
  bind(e, inputs, o.profile, logger);  // checks the shapes against the profile now, before any output is written
  return inputs;
}

void LayerProfile::merge(const LayerProfile& other) {
  for (const auto& name : other.order) {
    auto [it, fresh] = ms.try_emplace(name);
    if (fresh) order.push_back(name);
    const auto& v = other.ms.at(name);
    it->second.insert(it->second.end(), v.begin(), v.end());
  }
}

void finish_result(InferenceResult& r, std::vector<std::vector<QueryTime>>& times) {
  for (auto& v : times) r.queries.insert(r.queries.end(), v.begin(), v.end());
  std::sort(r.queries.begin(), r.queries.end(), [](auto& a, auto& b) { return a.start_h2d < b.start_h2d; });
  double end = 0;
  for (auto& q : r.queries) end = std::max(end, q.end_d2h);
  r.walltime_ms = r.queries.empty() ? 0 : end - r.queries.front().start_h2d;
}

std::vector<HostTensor> run_once(Engine& e, const std::vector<HostTensor>& inputs, int profile, CliLogger& logger) {
  if (e.getBackend() == "cuda") return run_once_cuda(e, inputs, profile, logger);
  BoundContext b = bind(e, inputs, profile, logger);
  if (!b.ctx->execute()) logger.fail_api("inference failed");
  return std::move(b.outputs);
}

InferenceResult run_inference(Engine& e, const std::vector<HostTensor>& inputs, const Options& o, CliLogger& logger) {
  if (e.getBackend() == "cuda") return run_inference_cuda(e, inputs, o, logger);
  std::vector<BoundContext> ctxs;
  for (int s = 0; s < o.streams; ++s) ctxs.push_back(bind(e, inputs, o.profile, logger));
  bool want_profile = o.dump_profile || !o.export_profile.empty();
  std::vector<LayerProfiler> profs(o.streams);
  bool profile_inline = want_profile && !o.separate_profile_run;
  std::vector<std::vector<QueryTime>> times(o.streams);
  std::vector<std::string> errors(o.streams);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < o.streams; ++s)
    threads.emplace_back(time_stream, std::ref(ctxs[s]), std::cref(o), t0, profile_inline ? &profs[s] : nullptr,
                         std::ref(times[s]), std::ref(errors[s]));
  for (auto& t : threads) t.join();
  for (int s = 0; s < o.streams; ++s)
    if (!errors[s].empty()) logger.fail_api("stream " + std::to_string(s) + ": " + errors[s]);
  InferenceResult r;
  finish_result(r, times);
  if (want_profile) {
    if (o.separate_profile_run) {
      ctxs[0].ctx->setProfiler(nullptr);
      info("Profiling in a separate run of " + std::to_string(o.iterations) + " iterations");
      profile_run(ctxs[0], o, profs[0], logger);
      r.profile = profs[0].profile();
    } else {
      for (auto& p : profs) r.profile.merge(p.profile());
      r.profile.runs = static_cast<int>(r.queries.size());
    }
    r.profiled = true;
  }
  r.outputs = std::move(ctxs[0].outputs);
  return r;
}

}  // namespace kiln::cli
