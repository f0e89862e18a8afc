// Build-time tactic timing on the GPU (issue 15), behind an explicit --builderOptimizationLevel:
// it awaits its check on a GPU (tests/gpu/cuda_tuning_test.cc), and until then a default build
// keeps the CUDA backend's heuristic picks (select_tactics). A layer whose kernel selects an
// algorithm lists its candidates (cuBLASLt's heuristic top-N, cuDNN's algorithms within the
// workspace); each is run at the opt shapes on its own layer state, timed with CUDA events, with
// the L2 cache flushed (a buffer of twice its size written) before every sample so that no tactic
// profits from operands another left in the cache.
#include <cuda_runtime.h>

#include <algorithm>
#include <map>

#include "backends/cuda/cuda_context.h"
#include "backends/cuda/cuda_status.h"
#include "core/log.h"
#include "kiln/builder.h"

namespace kiln::cuda {

namespace {

uint32_t source_of(const std::string& id) {
  if (id.find(".cublaslt.") != std::string::npos) return 1u << int(TacticSource::kCUBLAS_LT);
  if (id.find(".cudnn.") != std::string::npos) return 1u << int(TacticSource::kCUDNN);
  return 1u << int(TacticSource::kKILN);
}

class CudaTacticTimer : public TacticTimer {
 public:
  ~CudaTacticTimer() override {
    tactics_.clear();
    if (start_) cudaEventDestroy(start_);
    if (stop_) cudaEventDestroy(stop_);
    if (flush_) cudaFree(flush_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status init(const Graph& g, const ValueShapes& shapes, const EngineOptions& o, const std::vector<std::string>& tactics,
              int level) {
    KILN_ASSIGN_OR_RETURN(run_, OptShapeRun::make(g, shapes, o, tactics));
    max_candidates_ = level >= 5 ? 16 : level >= 3 ? 4 : 2;
    int dev = 0, l2 = 0;
    KILN_CUDA_CHECK(cudaGetDevice(&dev));
    KILN_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    flush_bytes_ = size_t(std::max(l2, 1)) * 2;
    KILN_CUDA_CHECK(cudaMalloc(&flush_, flush_bytes_));
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KILN_CUDA_CHECK(cudaEventCreate(&start_));
    KILN_CUDA_CHECK(cudaEventCreate(&stop_));
    // Clocks up before the first sample: an idle GPU runs the first tactics of a build slower
    // (two cold builds picked different algorithms for the same layer when only they were timed cold).
    float busy = 0;
    for (int i = 0; i < 400 && busy < 30.f; ++i) {
      KILN_CUDA_CHECK(cudaEventRecord(start_, stream_));
      for (int k = 0; k < 8; ++k) KILN_CUDA_CHECK(cudaMemsetAsync(flush_, k, flush_bytes_, stream_));
      KILN_CUDA_CHECK(cudaEventRecord(stop_, stream_));
      KILN_CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      busy += ms;
    }
    return Status::ok();
  }

  std::vector<TacticCandidate> candidates(size_t i) override {
    std::vector<TacticCandidate> out;
    if (!run_->ctx->selects_on_device(i, run_->io)) return out;
    const auto& engine = static_cast<const CudaEngine&>(*run_->engine);
    std::vector<std::string> ids;
    std::unique_ptr<LayerState> fresh;
    Status s = run_->ctx->run_layer(i, run_->io, engine.layers[i].kernel->tactic + ".heuristic", &fresh, &ids,
                                    max_candidates_, stream_);
    if (s) s = check(cudaStreamSynchronize(stream_), "listing tactics");
    if (!s) {  // the layer keeps the heuristic's pick; the build goes on
      log_warning(s.message() + ": the layer is not tuned");
      return out;
    }
    for (const auto& id : ids) out.push_back({id, source_of(id)});
    return out;
  }

  // One sample: the L2 flushed, then the tactic run `reps` times back to back between two events
  // (reps fixed per tactic at its second sample so that a sample lasts about 0.2 ms: a single run
  // of a small layer is as long as the host's launch jitter, which decided the pick otherwise).
  Expected<double> time_once(size_t i, const std::string& tactic) override {
    auto& t = tactics_[{i, tactic}];  // the tactic's own plans, made on its first (warm-up) run
    KILN_CUDA_CHECK(cudaMemsetAsync(flush_, int(++flushes_ & 0xff), flush_bytes_, stream_));
    KILN_CUDA_CHECK(cudaEventRecord(start_, stream_));
    for (int r = 0; r < t.reps; ++r)
      KILN_RETURN_IF_ERROR(run_->ctx->run_layer(i, run_->io, tactic, &t.state, nullptr, 0, stream_));
    KILN_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    const double each = double(ms) / t.reps;
    if (++t.samples == 2)  // the first made the plans; the second sizes the rest
      t.reps = std::clamp(int(0.2 / std::max(each, 1e-4)), 1, 64);
    return each;
  }

 private:
  std::unique_ptr<OptShapeRun> run_;
  struct Tactic {
    std::unique_ptr<LayerState> state;
    int reps = 1, samples = 0;
  };
  std::map<std::pair<size_t, std::string>, Tactic> tactics_;
  int max_candidates_ = 4;
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
  unsigned flushes_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace

Expected<std::unique_ptr<TacticTimer>> make_tactic_timer(const Graph& g, const ValueShapes& shapes, const EngineOptions& o,
                                                         const std::vector<std::string>& tactics, int level) {
  bool any = false;  // a layer on the device (else nothing to time, and no engine to make)
  for (const auto& t : tactics) any = any || t != kHostFallbackTactic;
  if (!any) return std::unique_ptr<TacticTimer>();
  auto timer = std::make_unique<CudaTacticTimer>();
  KILN_RETURN_IF_ERROR(timer->init(g, shapes, o, tactics, level));
  return std::unique_ptr<TacticTimer>(std::move(timer));
}

}  // namespace kiln::cuda
