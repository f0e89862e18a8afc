// CUDA engines in the kiln command, as trtexec runs TensorRT engines: each context has its own
// cudaStream, device buffers for every I/O tensor and pinned host copies of them. A timed query
// is the H2D copies of the inputs, the enqueue (or the replay of a CUDA graph captured from it)
// and the D2H copies of the outputs, all on the context's stream, with CUDA events between the
// parts; the enqueue call is timed on the host. Built without CUDA, these entry points refuse.
#include "tools/kiln/inference.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#endif

namespace kiln::cli {

#ifndef KILN_WITH_CUDA

void select_device(const Options& o) {
  if (o.device > 0)
    fail("--device=", o.device, ": no CUDA device ", o.device, " (this build of kiln has no CUDA backend)");
}

InferenceResult run_inference_cuda(Engine&, const std::vector<HostTensor>&, const Options&, CliLogger&) {
  fail("this build of kiln cannot run CUDA engines (built without a CUDA toolkit)");
}

std::vector<HostTensor> run_once_cuda(Engine&, const std::vector<HostTensor>&, int, CliLogger&) {
  fail("this build of kiln cannot run CUDA engines (built without a CUDA toolkit)");
}

#else

namespace {

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string cuda_error(cudaError_t e) { return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")"; }

void check(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  fail(what, ": ", cuda_error(e));
}

struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
struct PinnedFree {
  void operator()(void* p) const { cudaFreeHost(p); }
};

// One I/O tensor of a context: its device buffer (bound to the context) and a pinned host copy.
struct Buffer {
  std::string name;
  size_t bytes = 0;
  std::unique_ptr<void, CudaFree> device;
  std::unique_ptr<void, PinnedFree> host;
};

Buffer allocate(const std::string& name, size_t bytes) {
  Buffer b{name, bytes, nullptr, nullptr};
  void* d = nullptr;
  void* h = nullptr;
  check(cudaMalloc(&d, std::max<size_t>(bytes, 256)), "cudaMalloc for tensor '" + name + "'");
  b.device.reset(d);
  check(cudaMallocHost(&h, std::max<size_t>(bytes, 1)), "cudaMallocHost for tensor '" + name + "'");
  b.host.reset(h);
  return b;
}

struct CudaContext {
  std::unique_ptr<ExecutionContext> ctx;
  cudaStream_t stream = nullptr;
  cudaGraphExec_t graph = nullptr;  // --useCudaGraph, once captured
  std::vector<Buffer> inputs, outputs;
  std::vector<HostTensor> host_outputs;  // name, type and shape of each output

  CudaContext() = default;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  ~CudaContext() {
    ctx.reset();
    if (graph) cudaGraphExecDestroy(graph);
    if (stream) cudaStreamDestroy(stream);
  }

  cudaError_t copy_inputs() {
    for (const Buffer& b : inputs)
      if (b.bytes)
        if (cudaError_t e = cudaMemcpyAsync(b.device.get(), b.host.get(), b.bytes, cudaMemcpyHostToDevice, stream))
          return e;
    return cudaSuccess;
  }
  cudaError_t copy_outputs() {
    for (const Buffer& b : outputs)
      if (b.bytes)
        if (cudaError_t e = cudaMemcpyAsync(b.host.get(), b.device.get(), b.bytes, cudaMemcpyDeviceToHost, stream))
          return e;
    return cudaSuccess;
  }
  bool launch() { return graph ? cudaGraphLaunch(graph, stream) == cudaSuccess : ctx->enqueue(stream); }
  // The outputs of the last run, copied back to the host.
  std::vector<HostTensor> fetch_outputs() {
    check(copy_outputs(), "copying the outputs to the host");
    check(cudaStreamSynchronize(stream), "copying the outputs to the host");
    std::vector<HostTensor> out = host_outputs;
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].bytes.resize(outputs[i].bytes);
      if (outputs[i].bytes) std::memcpy(out[i].bytes.data(), outputs[i].host.get(), outputs[i].bytes);
    }
    return out;
  }
};

// A context with its input shapes set and every tensor bound to a device buffer; the inputs
// are uploaded once here (so --noDataTransfers still computes on the real data).
std::unique_ptr<CudaContext> bind(Engine& e, const std::vector<HostTensor>& inputs, int profile, CliLogger& logger) {
  auto c = std::make_unique<CudaContext>();
  c->ctx = e.createExecutionContext();
  if (!c->ctx || !c->ctx->setOptimizationProfile(profile)) logger.fail_api("cannot create an execution context");
  check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  for (const HostTensor& in : inputs) {
    if (!c->ctx->setInputShape(in.name, in.dims)) logger.fail_api("invalid run-time shape (--shapes, or the profile's opt)");
    Buffer b = allocate(in.name, in.bytes.size());
    if (b.bytes) std::memcpy(b.host.get(), in.bytes.data(), b.bytes);
    check(cudaMemcpy(b.device.get(), b.host.get(), b.bytes, cudaMemcpyHostToDevice), "uploading input '" + in.name + "'");
    c->ctx->setTensorAddress(in.name, b.device.get());
    c->inputs.push_back(std::move(b));
  }
  for (int i = 0; i < e.getNbIOTensors(); ++i) {
    std::string name = e.getIOTensorName(i);
    if (e.getTensorIOMode(name) != TensorIOMode::kOUTPUT) continue;
    HostTensor t{name, e.getTensorDataType(name), c->ctx->getTensorShape(name), {}};
    if (std::count(t.dims.begin(), t.dims.end(), -1))
      fail("output '", name, "' has a data-dependent shape, which kiln's CUDA backend does not support yet "
           "(run it with --backend=cpu)");
    Buffer b = allocate(name, volume(t.dims) * tensorTypeSize(t.type));
    c->ctx->setTensorAddress(name, b.device.get());
    c->outputs.push_back(std::move(b));
    c->host_outputs.push_back(std::move(t));
  }
  return c;
}

// cudaEventSynchronize either way; --useSpinWait polls the event first instead of sleeping.
cudaError_t wait_for(cudaEvent_t e, bool spin) {
  if (spin) {
    cudaError_t r;
    while ((r = cudaEventQuery(e)) == cudaErrorNotReady) {}
    if (r != cudaSuccess) return r;
  }
  return cudaEventSynchronize(e);
}

// Captures ctx->enqueue(stream) into a CUDA graph and replays it once. False, with the reason,
// when the engine cannot be captured (e.g. CPU fallback layers synchronize the stream).
bool capture_graph(CudaContext& c, CliLogger& logger, std::string& why) {
  cudaGetLastError();
  cudaError_t e = cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    why = "cudaStreamBeginCapture: " + cuda_error(e);
    cudaGetLastError();
    return false;
  }
  bool ok = c.ctx->enqueue(c.stream);
  cudaGraph_t g = nullptr;
  e = cudaStreamEndCapture(c.stream, &g);
  std::string api = logger.take_errors();
  if (!ok) why = api.empty() ? "the enqueue failed while capturing" : api;
  else if (e != cudaSuccess) why = "cudaStreamEndCapture: " + cuda_error(e);
  else if (!g) why = "cudaStreamEndCapture returned no graph";
  if (ok && e == cudaSuccess && g) {
    e = cudaGraphInstantiate(&c.graph, g, 0);
    if (e != cudaSuccess) {
      why = "cudaGraphInstantiate: " + cuda_error(e);
      c.graph = nullptr;
    }
  }
  if (g) cudaGraphDestroy(g);
  cudaGetLastError();
  if (c.graph) {  // replay once, so a graph that cannot run is found before the timed loop
    e = cudaGraphLaunch(c.graph, c.stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c.stream);
    if (e != cudaSuccess) {
      why = "replaying the graph: " + cuda_error(e);
      cudaGraphExecDestroy(c.graph);
      c.graph = nullptr;
    }
  }
  cudaStreamSynchronize(c.stream);
  cudaGetLastError();
  if (auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
  return c.graph != nullptr;
}

struct StreamRun {
  std::vector<QueryTime> times;
  std::string error;          // the run failed
  std::string graph_failure;  // --useCudaGraph fell back to plain enqueue, and why
};

// Queries in flight per stream: the host enqueues query n+1 while the GPU runs query n.
constexpr int kDepth = 2;

// One stream's run on its own thread: warm-up, CUDA graph capture, then at least --iterations
// queries and --duration seconds. Times are relative to `zero` (GPU) and `t0` (host), taken
// together after a device synchronize.
void time_stream(CudaContext& c, const Options& o, Clock::time_point t0, cudaEvent_t zero, Profiler* prof,
                 CliLogger& logger, StreamRun& out) {
  cudaEvent_t ev[kDepth][4] = {};
  try {
    check(cudaSetDevice(o.device), "cudaSetDevice");
    const bool copies = !o.no_data_transfers, spin = o.use_spin_wait;
    auto warm_start = Clock::now();
    while (ms_between(warm_start, Clock::now()) < o.warmup_ms) {
      if (copies) check(c.copy_inputs(), "H2D copy");
      if (!c.ctx->enqueue(c.stream)) fail("warm-up run failed");
      if (copies) check(c.copy_outputs(), "D2H copy");
      check(cudaStreamSynchronize(c.stream), "warm-up run");
    }
    if (o.use_cuda_graph && !capture_graph(c, logger, out.graph_failure) && out.graph_failure.empty())
      out.graph_failure = "unknown reason";
    c.ctx->setProfiler(prof);  // profile the timed queries only, not the warm-up
    unsigned flags = spin ? cudaEventDefault : cudaEventBlockingSync;
    for (auto& slot : ev)
      for (auto& e : slot) check(cudaEventCreateWithFlags(&e, flags), "cudaEventCreate");
    Clock::time_point enq[kDepth][2];
    auto collect = [&](int s) {
      check(wait_for(ev[s][3], spin), "inference");
      float ms[4];
      for (int k = 0; k < 4; ++k) check(cudaEventElapsedTime(&ms[k], zero, ev[s][k]), "cudaEventElapsedTime");
      if (!copies) {  // --noDataTransfers: no copies, so H2D and D2H take no time
        ms[0] = ms[1];
        ms[3] = ms[2];
      }
      QueryTime q;
      q.start_enq = ms_between(t0, enq[s][0]);
      q.end_enq = ms_between(t0, enq[s][1]);
      q.start_h2d = ms[0];
      q.end_h2d = q.start_compute = ms[1];
      q.end_compute = q.start_d2h = ms[2];
      q.end_d2h = ms[3];
      out.times.push_back(q);
    };
    auto start = Clock::now();
    int n = 0;
    for (; n < o.iterations || ms_between(start, Clock::now()) < o.duration_s * 1000; ++n) {
      int s = n % kDepth;
      if (n >= kDepth) collect(s);
      check(cudaEventRecord(ev[s][0], c.stream), "cudaEventRecord");
      if (copies) check(c.copy_inputs(), "H2D copy");
      check(cudaEventRecord(ev[s][1], c.stream), "cudaEventRecord");
      enq[s][0] = Clock::now();
      if (!c.launch()) fail(c.graph ? "cudaGraphLaunch failed" : "inference failed");
      enq[s][1] = Clock::now();
      check(cudaEventRecord(ev[s][2], c.stream), "cudaEventRecord");
      if (copies) check(c.copy_outputs(), "D2H copy");
      check(cudaEventRecord(ev[s][3], c.stream), "cudaEventRecord");
    }
    for (int k = std::max(0, n - kDepth); k < n; ++k) collect(k % kDepth);
  } catch (const CliError& e) {
    out.error = e.what();
  }
  c.ctx->setProfiler(nullptr);
  cudaStreamSynchronize(c.stream);
  for (auto& slot : ev)
    for (auto& e : slot)
      if (e) cudaEventDestroy(e);
}

}  // namespace

void select_device(const Options& o) {
  if (o.device == 0) return;  // the default device; the engine checks that it is usable
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail("--device=", o.device, ": no CUDA device ", o.device, " on this machine (", cuda_error(e), ")");
  }
  if (o.device >= count)
    fail("--device=", o.device, ": no CUDA device ", o.device, " on this machine (", count, " found)");
  check(cudaSetDevice(o.device), "--device=" + std::to_string(o.device));
}

std::vector<HostTensor> run_once_cuda(Engine& e, const std::vector<HostTensor>& inputs, int profile,
                                      CliLogger& logger) {
  auto c = bind(e, inputs, profile, logger);
  if (!c->ctx->enqueue(c->stream)) logger.fail_api("inference failed");
  check(cudaStreamSynchronize(c->stream), "inference");
  return c->fetch_outputs();
}

InferenceResult run_inference_cuda(Engine& e, const std::vector<HostTensor>& inputs, const Options& o,
                                   CliLogger& logger) {
  std::vector<std::unique_ptr<CudaContext>> ctxs;
  for (int s = 0; s < o.streams; ++s) ctxs.push_back(bind(e, inputs, o.profile, logger));
  const bool want_profile = o.dump_profile || !o.export_profile.empty();
  // A CUDA graph replays without per-layer events: its profile comes from a separate run.
  const bool separate = want_profile && (o.separate_profile_run || o.use_cuda_graph);
  if (want_profile && !o.separate_profile_run && o.use_cuda_graph)
    info("--useCudaGraph: per-layer times come from a separate profiling run (a graph replay has no per-layer "
         "events)");
  std::vector<LayerProfiler> profs(o.streams);
  std::vector<StreamRun> runs(o.streams);
  cudaEvent_t zero = nullptr;
  check(cudaEventCreate(&zero), "cudaEventCreate");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  check(cudaEventRecord(zero, ctxs[0]->stream), "cudaEventRecord");
  check(cudaEventSynchronize(zero), "cudaEventSynchronize");
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < o.streams; ++s)
    threads.emplace_back(time_stream, std::ref(*ctxs[s]), std::cref(o), t0, zero,
                         want_profile && !separate ? &profs[s] : nullptr, std::ref(logger), std::ref(runs[s]));
  for (auto& t : threads) t.join();
  cudaEventDestroy(zero);
  for (int s = 0; s < o.streams; ++s)
    if (!runs[s].error.empty()) logger.fail_api("stream " + std::to_string(s) + ": " + runs[s].error);
  if (o.use_cuda_graph) {
    int captured = 0;
    std::string why;
    for (auto& c : ctxs) captured += c->graph != nullptr;
    for (auto& r : runs) if (why.empty()) why = r.graph_failure;
    if (captured == o.streams)
      info("--useCudaGraph: captured the enqueue into a CUDA graph" + std::string(o.streams > 1 ? " per stream" : "") +
           " and replayed it with cudaGraphLaunch");
    else
      warning("--useCudaGraph: CUDA graph capture failed (" + why + "); ran with plain enqueue instead" +
              (captured ? " on " + std::to_string(o.streams - captured) + " of " + std::to_string(o.streams) + " streams"
                        : ""));
  }
  InferenceResult r;
  r.cuda = true;
  std::vector<std::vector<QueryTime>> times;
  for (auto& run : runs) times.push_back(std::move(run.times));
  finish_result(r, times);
  r.outputs = ctxs[0]->fetch_outputs();
  if (want_profile) {
    if (separate) {
      CudaContext& c = *ctxs[0];
      info("Profiling in a separate run of " + std::to_string(o.iterations) + " iterations");
      c.ctx->setProfiler(&profs[0]);
      for (int i = 0; i < o.iterations; ++i) {
        if (!c.ctx->enqueue(c.stream)) logger.fail_api("profiling run failed");
        check(cudaStreamSynchronize(c.stream), "profiling run");
      }
      c.ctx->setProfiler(nullptr);
      r.profile = profs[0].profile();
      r.profile.runs = o.iterations;
    } else {
      for (auto& p : profs) r.profile.merge(p.profile());
      r.profile.runs = static_cast<int>(r.queries.size());
    }
    r.profiled = true;
  }
  return r;
}

#endif  // KILN_WITH_CUDA

}  // namespace kiln::cli
