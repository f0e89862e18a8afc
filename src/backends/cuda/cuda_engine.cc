#include "backends/cuda/cuda_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

#include "backends/cuda/cuda_context.h"
#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"
#include "backends/memory_plan.h"
#include "core/log.h"

namespace kiln::cuda {

// cuDNN and cuBLASLt handles cost milliseconds and host memory to make, and making and
// destroying them over and over (contexts created per request) grew the process by ~150 MiB in
// 5,000 contexts on the H100. A context borrows one pair of its device from this pool and gives
// it back when it goes; a pair serves one context at a time, as both libraries require.
namespace {

struct Handles {
  int device = -1;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
};
std::mutex g_handles_mu;
std::vector<Handles>& idle_handles() {
  static auto* pool = new std::vector<Handles>();  // never destroyed: handles outlive static teardown
  return *pool;
}

Expected<Handles> borrow_handles() {
  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  {
    std::lock_guard<std::mutex> lock(g_handles_mu);
    auto& pool = idle_handles();
    for (size_t i = 0; i < pool.size(); ++i)
      if (pool[i].device == device) {
        Handles h = pool[i];
        pool.erase(pool.begin() + long(i));
        return h;
      }
  }
  Handles h;
  h.device = device;
  KILN_CUDA_CHECK(cublasLtCreate(&h.lt));
  if (cudnnStatus_t s = cudnnCreate(&h.dnn); s != CUDNN_STATUS_SUCCESS) {
    cublasLtDestroy(h.lt);
    return err("cudnnCreate: ", cudnnGetErrorString(s));
  }
  return h;
}

void return_handles(const Handles& h) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  idle_handles().push_back(h);
}

}  // namespace

namespace {

// KILN_HOST_TIMES=1: see CudaContext::host_times_.
bool host_times_wanted() {
  static const bool on = [] {
    const char* e = std::getenv("KILN_HOST_TIMES");
    return e && std::strcmp(e, "1") == 0;
  }();
  return on;
}

// "cuda.conv.cudnn.implicit_gemm.tensor_op" -> "cuda.conv.cudnn": a tactic's family and source.
std::string tactic_family(const std::string& tactic) {
  size_t dots = 0, i = 0;
  for (; i < tactic.size(); ++i)
    if (tactic[i] == '.' && ++dots == 3) break;
  return tactic.substr(0, i);
}

void log_host_times(const std::map<std::string, std::pair<double, long>>& times) {
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [key, t] : times) {
    char line[256];
    std::snprintf(line, sizeof line, "%10.2f us/call %8ld calls %10.1f ms  %s", 1e6 * t.first / double(std::max(t.second, 1L)),
                  t.second, 1e3 * t.first, key.c_str());
    rows.push_back({t.first, line});
  }
  std::sort(rows.rbegin(), rows.rend());
  log_info("KILN_HOST_TIMES: host time launching, per op and tactic family (largest total first):");
  for (const auto& r : rows) log_info("  " + r.second);
}

}  // namespace

CudaContext::~CudaContext() {
  if (!host_times_.empty()) log_host_times(host_times_);
  if (cublaslt_ && cudnn_) return_handles({device_, cublaslt_, cudnn_});
  for (void* p : {workspace_, arena_, consts_}) if (p) cudaFree(p);
}

Status CudaContext::init() {
  KILN_ASSIGN_OR_RETURN(Handles h, borrow_handles());
  device_ = h.device;
  cublaslt_ = h.lt;
  cudnn_ = h.dnn;
  states_.resize(engine_.layers.size());
  if (engine_.options.workspace_bytes) KILN_CUDA_CHECK(cudaMalloc(&workspace_, engine_.options.workspace_bytes));
  return Status::ok();
}

std::vector<int64_t> CudaContext::dims_of(const Value* v) const {
  if (v->initializer) return v->initializer->dims();
  auto it = shapes_->dims.find(v);
  return it == shapes_->dims.end() ? std::vector<int64_t>{} : it->second;
}

Status CudaContext::prepare(const ValueShapes& shapes) {
  shapes_ = &shapes;
  const Graph& g = engine_.graph;
  auto host_known = [&](const Value* v) { return shapes.values.count(v) != 0; };

  // 1. Layers whose outputs the host evaluated (shape arithmetic) do not run on the device.
  skip_.assign(engine_.layers.size(), false);
  for (size_t i = 0; i < engine_.layers.size(); ++i) {
    bool all = !engine_.layers[i].node->outputs.empty();
    for (const Value* o : engine_.layers[i].node->outputs) all = all && (!o || host_known(o));
    skip_[i] = all;
  }
  // Layers whose output shape the host could not fix (their shape parameters are run-time data,
  // e.g. Pad's pads fed as an input) run on the CPU for these shapes: only there can an output
  // be sized after it is computed.
  dynamic_.assign(engine_.layers.size(), false);
  for (size_t i = 0; i < engine_.layers.size(); ++i)
    for (const Value* o : engine_.layers[i].node->outputs)
      if (o && !skip_[i] && !shapes.dims.count(o)) dynamic_[i] = true;
  // A layer reading a value of data-dependent shape (a Range whose limit is an input, then the
  // window arithmetic on it) runs on the CPU too: such values stay on the host (host_dyn_).
  for (size_t i = 0; i < engine_.layers.size(); ++i) {
    if (skip_[i]) continue;
    for (const Value* v : engine_.layers[i].node->inputs)
      if (v && !v->initializer && !v->is_graph_input && !shapes.dims.count(v)) dynamic_[i] = true;
  }
  // 2. Host values read by device layers get a device copy (uploaded now, once per shape).
  std::vector<const Value*> uploads;
  uint64_t const_bytes = 0;
  for (size_t i = 0; i < engine_.layers.size(); ++i) {
    if (skip_[i]) continue;
    for (const Value* v : engine_.layers[i].node->inputs)
      if (v && host_known(v) && !v->initializer && std::find(uploads.begin(), uploads.end(), v) == uploads.end()) {
        uploads.push_back(v);
        const_bytes += (shapes.values.at(v).nbytes() + 255) / 256 * 256;
      }
  }
  if (consts_) { cudaFree(consts_); consts_ = nullptr; }
  const_ptr_.clear();
  if (const_bytes) {
    KILN_CUDA_CHECK(cudaMalloc(&consts_, const_bytes));
    uint64_t off = 0;
    std::vector<HostUpload> copies;
    for (const Value* v : uploads) {
      const Tensor& t = shapes.values.at(v);
      void* p = static_cast<char*>(consts_) + off;
      copies.push_back({p, t.raw(), t.nbytes()});
      const_ptr_[v] = p;
      off += (t.nbytes() + 255) / 256 * 256;
    }
    KILN_RETURN_IF_ERROR(upload_sync(copies));
  }
  // 3. Plan the arena over the remaining activations; views share their source's block.
  auto plan = plan_graph_memory(
      g, shapes, [&](size_t i) { return !skip_[i]; },
      [&](size_t i) { return engine_.layers[i].kernel && engine_.layers[i].kernel->view && !dynamic_[i]; });
  offset_ = std::move(plan.offsets);
  alias_ = std::move(plan.aliases);
  arena_size_ = plan.arena_bytes;
  if (arena_size_ > arena_capacity_) {
    if (arena_) cudaFree(arena_);
    arena_ = nullptr;
    arena_capacity_ = 0;
    if (cudaError_t e = cudaMalloc(&arena_, arena_size_); e != cudaSuccess) {
      arena_ = nullptr;
      return check(e, ("activation memory (" + std::to_string(arena_size_) + " bytes)").c_str());
    }
    arena_capacity_ = arena_size_;
  }
  return Status::ok();
}

void* CudaContext::resolve(const Value* v, const std::map<std::string, void*>& io) const {
  if (!v) return nullptr;
  if (v->is_graph_input || std::find(engine_.graph.outputs.begin(), engine_.graph.outputs.end(), v) !=
                               engine_.graph.outputs.end()) {
    auto it = io.find(v->name);
    return it == io.end() ? nullptr : it->second;
  }
  if (auto it = engine_.weight_ptr.find(v); it != engine_.weight_ptr.end()) return it->second;
  if (auto it = const_ptr_.find(v); it != const_ptr_.end()) return it->second;
  if (auto it = alias_.find(v); it != alias_.end()) return resolve(it->second, io);
  if (auto it = offset_.find(v); it != offset_.end()) return static_cast<char*>(arena_) + it->second;
  return nullptr;
}

Expected<Tensor> CudaContext::to_host(const DeviceTensor& d, cudaStream_t stream) {
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(d.dtype, d.dims));
  if (t.nbytes()) KILN_CUDA_CHECK(cudaMemcpyAsync(t.mutable_raw(), d.data, t.nbytes(), cudaMemcpyDeviceToHost, stream));
  return t;
}

// Copies the layer's inputs (and the outer values its subgraphs read) to the host, runs the CPU
// kernel, and copies the outputs back; an output of data-dependent shape gets its memory from
// the caller's allocator (`sink`), since nothing on the device could be sized for it.
Status CudaContext::run_fallback(const Layer& l, LaunchContext& lc, const std::map<std::string, void*>& io,
                                 const OutputSink& sink) {
  std::vector<Tensor> host(lc.inputs.size());
  std::vector<const Tensor*> args(lc.inputs.size(), nullptr);
  for (size_t i = 0; i < lc.inputs.size(); ++i) {
    if (lc.host_inputs[i]) { args[i] = lc.host_inputs[i]; continue; }
    if (auto hd = host_dyn_.find(l.node->inputs[i]); hd != host_dyn_.end()) { args[i] = &hd->second; continue; }
    if (!lc.inputs[i].data) continue;
    KILN_ASSIGN_OR_RETURN(host[i], to_host(lc.inputs[i], lc.stream));
    args[i] = &host[i];
  }
  std::vector<Value*> implicit = l.node->implicit_inputs();
  std::vector<Tensor> scope(implicit.size());
  std::vector<const Tensor*> scope_args;
  for (size_t i = 0; i < implicit.size(); ++i) {
    const Value* v = implicit[i];
    if (v->initializer) { scope_args.push_back(v->initializer); continue; }
    if (auto hv = shapes_->values.find(v); hv != shapes_->values.end()) { scope_args.push_back(&hv->second); continue; }
    if (auto hd = host_dyn_.find(v); hd != host_dyn_.end()) { scope_args.push_back(&hd->second); continue; }
    KILN_ASSIGN_OR_RETURN(scope[i], to_host(DeviceTensor{resolve(v, io), v->dtype, dims_of(v)}, lc.stream));
    scope_args.push_back(&scope[i]);
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(lc.stream));
  if (!engine_.options.host) return lc.fail("runs on the host, but the engine gave the CUDA backend no host kernels");
  KILN_ASSIGN_OR_RETURN(auto outs, engine_.options.host(*l.node, args, scope_args));
  for (size_t k = 0; k < lc.outputs.size(); ++k) {
    const Value* v = l.node->outputs[k];
    if (!v) continue;
    void* dst = lc.outputs[k].data;
    const bool is_output = std::find(engine_.graph.outputs.begin(), engine_.graph.outputs.end(), v) !=
                           engine_.graph.outputs.end();
    if (!shapes_->dims.count(v)) {
      // Data-dependent: later CPU layers read it from the host; a graph output goes to the
      // caller's buffer when the shape the caller was told (the declared static one) is what came
      // out, else to the caller's allocator.
      bool told = v->shape.is_static() && v->shape.static_dims() == outs[k].dims() && dst;
      if (is_output && !told) {
        if (!sink) return lc.fail("output '", v->name, "' has a data-dependent shape and no allocator");
        KILN_ASSIGN_OR_RETURN(dst, sink(*v, outs[k].dims(), outs[k].nbytes()));
      }
      if (dst && outs[k].nbytes())
        KILN_CUDA_CHECK(cudaMemcpyAsync(dst, outs[k].raw(), outs[k].nbytes(), cudaMemcpyHostToDevice, lc.stream));
      host_dyn_[v] = std::move(outs[k]);
      continue;
    }
    if (outs[k].nbytes() != lc.outputs[k].nbytes())
      return lc.fail("CPU fallback produced ", outs[k].describe(), ", expected ", dims_to_string(lc.outputs[k].dims));
    if (dst && outs[k].nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(dst, outs[k].raw(), outs[k].nbytes(), cudaMemcpyHostToDevice, lc.stream));
  }
  // The host tensors must outlive the copies: pageable copies are staged before they return,
  // but wait anyway so the next layer's host reads see finished data.
  KILN_CUDA_CHECK(cudaStreamSynchronize(lc.stream));
  return Status::ok();
}

void CudaContext::fill_launch(LaunchContext& lc, size_t i, const std::map<std::string, void*>& io, cudaStream_t stream) {
  const Node& n = *engine_.layers[i].node;
  lc.stream = stream;
  lc.workspace = workspace_;
  lc.workspace_bytes = engine_.options.workspace_bytes;
  lc.cublaslt = cublaslt_;
  lc.cudnn = cudnn_;
  lc.tf32 = engine_.options.tf32;
  lc.tactic = engine_.layers[i].tactic;
  lc.state = &states_[i];
  for (const Value* v : n.inputs) {
    lc.inputs.push_back(v ? DeviceTensor{resolve(v, io), v->dtype, dims_of(v)} : DeviceTensor{});
    const Tensor* h = nullptr;
    if (v && v->initializer) h = v->initializer;
    else if (v && shapes_->values.count(v)) h = &shapes_->values.at(v);
    lc.host_inputs.push_back(h);
  }
  for (const Value* v : n.outputs) lc.outputs.push_back(v ? DeviceTensor{resolve(v, io), v->dtype, dims_of(v)} : DeviceTensor{});
}

Status CudaContext::select(const std::map<std::string, void*>& io, std::vector<std::string>& tactics) {
  if (!shapes_) return err("the context has no input shapes yet");
  KILN_CUDA_CHECK(cudnnSetStream(cudnn_, nullptr));
  for (size_t i = 0; i < engine_.layers.size(); ++i) {
    const Layer& l = engine_.layers[i];
    if (skip_[i] || dynamic_[i] || !l.kernel || !l.kernel->selects) continue;
    LaunchContext lc(*l.node);
    fill_launch(lc, i, io, nullptr);
    bool all_placed = true;  // every operand present has memory at the opt shapes
    for (size_t k = 0; k < lc.inputs.size(); ++k)
      all_placed = all_placed && (!l.node->inputs[k] || lc.inputs[k].data || !lc.inputs[k].numel());
    for (size_t k = 0; k < lc.outputs.size(); ++k)
      all_placed = all_placed && (!l.node->outputs[k] || lc.outputs[k].data || !lc.outputs[k].numel());
    if (!all_placed) continue;
    std::unique_ptr<LayerState> fresh;
    lc.state = &fresh;
    std::string id;
    lc.selected = &id;
    Status s = l.kernel->run(lc);
    if (s) s = check(cudaStreamSynchronize(nullptr), "tactic selection");
    if (!s) return s.message().rfind("node '", 0) == 0 ? s : s.with_context(l.node->label() + ": ");
    if (!id.empty()) tactics[i] = id;  // an empty output (no work) keeps "<family>.heuristic"
  }
  return Status::ok();
}

bool CudaContext::selects_on_device(size_t i, const std::map<std::string, void*>& io) {
  const Layer& l = engine_.layers[i];
  if (!shapes_ || skip_[i] || dynamic_[i] || !l.kernel || !l.kernel->selects) return false;
  LaunchContext lc(*l.node);
  fill_launch(lc, i, io, nullptr);
  for (size_t k = 0; k < lc.inputs.size(); ++k)
    if (l.node->inputs[k] && !lc.inputs[k].data && lc.inputs[k].numel()) return false;
  for (size_t k = 0; k < lc.outputs.size(); ++k)
    if (l.node->outputs[k] && !lc.outputs[k].data && lc.outputs[k].numel()) return false;
  return true;
}

Status CudaContext::run_layer(size_t i, const std::map<std::string, void*>& io, const std::string& tactic,
                              std::unique_ptr<LayerState>* state, std::vector<std::string>* candidates,
                              int max_candidates, cudaStream_t stream) {
  const Layer& l = engine_.layers[i];
  KILN_CUDA_CHECK(cudnnSetStream(cudnn_, stream));
  LaunchContext lc(*l.node);
  fill_launch(lc, i, io, stream);
  lc.tactic = tactic;
  lc.state = state;
  lc.candidates = candidates;
  lc.max_candidates = max_candidates;
  Status s = l.kernel->run(lc);
  if (s) s = check(cudaGetLastError(), "kernel launch");
  if (!s) return s.message().rfind("node '", 0) == 0 ? s : s.with_context(l.node->label() + ": ");
  return Status::ok();
}

Status CudaContext::enqueue(const std::map<std::string, void*>& io, void* stream_ptr, LayerTimer* timer,
                            const OutputSink& sink) {
  if (!shapes_) return err("the context has no input shapes yet");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const Graph& g = engine_.graph;
  for (const Value* v : g.inputs)
    if (!io.count(v->name) || !io.at(v->name)) return err("input '", v->name, "' has no address (setTensorAddress)");
  for (const Value* v : g.outputs) {
    if (!v->initializer && !shapes_->dims.count(v)) continue;  // data-dependent: the allocator sizes it
    if (!io.count(v->name) || !io.at(v->name)) return err("output '", v->name, "' has no address (setTensorAddress)");
    if (v->initializer) {  // a constant output (folded): copy it from the weights
      KILN_CUDA_CHECK(cudaMemcpyAsync(io.at(v->name), engine_.weight_ptr.at(v), v->initializer->nbytes(),
                                      cudaMemcpyDeviceToDevice, stream));
      continue;
    }
    auto hv = shapes_->values.find(v);  // an output the host computed: copy it out
    if (hv != shapes_->values.end())
      KILN_CUDA_CHECK(cudaMemcpyAsync(io.at(v->name), hv->second.raw(), hv->second.nbytes(), cudaMemcpyHostToDevice, stream));
  }
  KILN_CUDA_CHECK(cudnnSetStream(cudnn_, stream));
  host_dyn_.clear();
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> events;
  using Clock = std::chrono::steady_clock;
  const bool host_times = host_times_wanted();
  const Clock::time_point enqueue_start = host_times ? Clock::now() : Clock::time_point();
  for (size_t i = 0; i < engine_.layers.size(); ++i) {
    if (skip_[i]) continue;
    const Layer& l = engine_.layers[i];
    const Node& n = *l.node;
    const Clock::time_point layer_start = host_times ? Clock::now() : Clock::time_point();
    LaunchContext lc(n);
    fill_launch(lc, i, io, stream);
    cudaEvent_t start = nullptr, stop = nullptr;
    if (timer) {
      KILN_CUDA_CHECK(cudaEventCreate(&start));
      KILN_CUDA_CHECK(cudaEventCreate(&stop));
      KILN_CUDA_CHECK(cudaEventRecord(start, stream));
    }
    Status s;
    if (!l.kernel || dynamic_[i]) {
      s = run_fallback(l, lc, io, sink);
    } else if (l.kernel->view) {
      if (lc.outputs[0].data != lc.inputs[0].data)
        s = check(cudaMemcpyAsync(lc.outputs[0].data, lc.inputs[0].data, lc.outputs[0].nbytes(), cudaMemcpyDeviceToDevice, stream),
                  "view copy");
    } else {
      s = l.kernel->run(lc);
      if (s) s = check(cudaGetLastError(), "kernel launch");
    }
    if (!s) return s.message().rfind("node '", 0) == 0 ? s : s.with_context(n.label() + ": ");
    if (host_times) {
      auto& t = host_times_[n.op_type + " " + (l.kernel && !dynamic_[i] ? tactic_family(l.tactic) : std::string("cpu.fallback"))];
      t.first += std::chrono::duration<double>(Clock::now() - layer_start).count();
      ++t.second;
    }
    if (timer) {
      KILN_CUDA_CHECK(cudaEventRecord(stop, stream));
      events.push_back({start, stop});
    }
  }
  if (host_times) {
    auto& t = host_times_["(whole enqueue)"];
    t.first += std::chrono::duration<double>(Clock::now() - enqueue_start).count();
    ++t.second;
  }
  if (timer) {
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
    size_t e = 0;
    for (size_t i = 0; i < engine_.layers.size(); ++i) {
      if (skip_[i]) continue;
      float ms = 0;
      cudaEventElapsedTime(&ms, events[e].first, events[e].second);
      cudaEventDestroy(events[e].first);
      cudaEventDestroy(events[e].second);
      ++e;
      timer->layer_time(*engine_.layers[i].node, ms);
    }
  }
  return Status::ok();
}

Expected<std::unique_ptr<BackendContext>> CudaEngine::create_context() {
  auto ctx = std::make_unique<CudaContext>(*this);
  KILN_RETURN_IF_ERROR(ctx->init());
  return std::unique_ptr<BackendContext>(std::move(ctx));
}

Expected<std::unique_ptr<BackendEngine>> create_engine(const Graph& graph, const std::vector<std::string>& tactics,
                                                       const EngineOptions& options) {
  KILN_ASSIGN_OR_RETURN(DeviceInfo dev, query_device());
  (void)dev;
  auto e = std::make_unique<CudaEngine>(graph, options);
  const auto& nodes = graph.nodes();
  if (tactics.size() != nodes.size()) return err("engine has ", tactics.size(), " tactics for ", nodes.size(), " layers");
  for (size_t i = 0; i < nodes.size(); ++i) {
    Layer l{nodes[i].get(), nullptr, tactics[i]};
    if (tactics[i] != kHostFallbackTactic) {
      l.kernel = CudaKernelTable::global().find(nodes[i]->domain, nodes[i]->op_type, tactics[i]);
      if (!l.kernel)
        return err(nodes[i]->label(), ": tactic '", tactics[i], "' is unknown to this build of kiln; rebuild the engine");
    }
    e->layers.push_back(l);
  }
  // Weights: one device allocation, each tensor 256-byte aligned, uploaded once.
  uint64_t total = 0;
  for (const auto& v : graph.values())
    if (v->initializer) total += (v->initializer->nbytes() + 255) / 256 * 256;
  if (total) {
    KILN_CUDA_CHECK(cudaMalloc(&e->weights, total));
    uint64_t off = 0;
    std::vector<HostUpload> copies;
    for (const auto& v : graph.values()) {
      if (!v->initializer) continue;
      void* p = static_cast<char*>(e->weights) + off;
      copies.push_back({p, v->initializer->raw(), v->initializer->nbytes()});
      e->weight_ptr[v.get()] = p;
      off += (v->initializer->nbytes() + 255) / 256 * 256;
    }
    KILN_RETURN_IF_ERROR(upload_sync(copies));
  }
  return std::unique_ptr<BackendEngine>(std::move(e));
}

OptShapeRun::~OptShapeRun() {
  ctx.reset();
  for (void* p : owned) cudaFree(p);
}

Expected<std::unique_ptr<OptShapeRun>> OptShapeRun::make(const Graph& graph, const ValueShapes& shapes,
                                                         const EngineOptions& options, const std::vector<std::string>& tactics) {
  auto run = std::make_unique<OptShapeRun>();
  KILN_ASSIGN_OR_RETURN(run->engine, create_engine(graph, tactics, options));
  run->ctx = std::make_unique<CudaContext>(static_cast<CudaEngine&>(*run->engine));
  KILN_RETURN_IF_ERROR(run->ctx->init());
  KILN_RETURN_IF_ERROR(run->ctx->prepare(shapes));
  // The graph's inputs and outputs at the opt shapes, and the arena, hold arbitrary but finite
  // numbers: bytes of 0x3C are 1.06 in float16 and 0.0115 in float32 and bfloat16.
  std::vector<const Value*> ends(graph.inputs.begin(), graph.inputs.end());
  ends.insert(ends.end(), graph.outputs.begin(), graph.outputs.end());
  for (const Value* v : ends) {
    auto d = shapes.dims.find(v);
    if (d == shapes.dims.end() || run->io.count(v->name)) continue;
    int64_t n = 1;
    for (int64_t x : d->second) n *= x;
    const size_t bytes = std::max<size_t>(dtype_nbytes(v->dtype, n), 1);
    void* p = nullptr;
    KILN_CUDA_CHECK(cudaMalloc(&p, bytes));
    run->owned.push_back(p);
    KILN_CUDA_CHECK(cudaMemset(p, 0x3C, bytes));
    run->io[v->name] = p;
  }
  if (run->ctx->arena_bytes()) KILN_CUDA_CHECK(cudaMemset(run->ctx->arena(), 0x3C, run->ctx->arena_bytes()));
  // The fills ran on the legacy stream; selection and tuning run on others (the tuner's stream is
  // non-blocking), which are not ordered after them.
  KILN_CUDA_CHECK(cudaDeviceSynchronize());
  return run;
}

Status select_tactics(const Graph& graph, const ValueShapes& shapes, const EngineOptions& options,
                      std::vector<std::string>& tactics) {
  const auto& nodes = graph.nodes();
  bool any = false;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (tactics[i] == kHostFallbackTactic) continue;
    std::string why;
    const CudaKernelEntry* e = CudaKernelTable::global().choose(*nodes[i], &why);
    if (!e) {
      tactics[i] = kHostFallbackTactic;
      log_warning(nodes[i]->label() + " runs on the CPU (fallback): " + why);
      continue;
    }
    tactics[i] = e->selects ? e->tactic + ".heuristic" : e->tactic;
    any = any || e->selects;
  }
  if (!any) return Status::ok();
  KILN_ASSIGN_OR_RETURN(auto run, OptShapeRun::make(graph, shapes, options, tactics));
  Status s = run->ctx->select(run->io, tactics);
  if (!s) return s.with_context("tactic selection at the opt shapes: ");
  return Status::ok();
}

}  // namespace kiln::cuda
