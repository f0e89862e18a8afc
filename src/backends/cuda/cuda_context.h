// The CUDA engine and context classes (cuda_engine.cc), shared with the build-time tuning
// (cuda_tuning.cc): an engine holds the layers (node, kernel, recorded tactic) and the weights on
// the device; a context its handles, workspace, arena and per-layer kernel state.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_engine.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda {

struct Layer {
  const Node* node = nullptr;
  const CudaKernelEntry* kernel = nullptr;  // null: CPU fallback
  std::string tactic;                       // the recorded id
};

class CudaEngine : public BackendEngine {
 public:
  CudaEngine(const Graph& g, EngineOptions o) : graph(g), options(o) {}
  ~CudaEngine() override { if (weights) cudaFree(weights); }
  Expected<std::unique_ptr<BackendContext>> create_context() override;

  const Graph& graph;
  EngineOptions options;
  std::vector<Layer> layers;
  void* weights = nullptr;
  std::map<const Value*, void*> weight_ptr;
};

class CudaContext : public BackendContext {
 public:
  explicit CudaContext(CudaEngine& e) : engine_(e) {}
  ~CudaContext() override;
  Status init();
  Status prepare(const ValueShapes& shapes) override;
  Status enqueue(const std::map<std::string, void*>& io, void* stream, LayerTimer* timer,
                 const OutputSink& sink) override;
  uint64_t arena_bytes() const override { return arena_size_; }
  // Build time: runs each layer whose kernel selects once, in a fresh state, and writes the id
  // it picked into tactics[i]. Inputs and outputs are wherever io and the arena put them.
  Status select(const std::map<std::string, void*>& io, std::vector<std::string>& tactics);
  void* arena() const { return arena_; }
  // Build time, tuning (cuda_tuning.cc): whether layer i runs a selecting kernel on the device at
  // the prepared shapes with every operand placed; and one run of it on `stream` with `tactic` and
  // the layer state `state` (fresh per tactic), listing its candidates into `candidates` if given.
  bool selects_on_device(size_t i, const std::map<std::string, void*>& io);
  Status run_layer(size_t i, const std::map<std::string, void*>& io, const std::string& tactic,
                   std::unique_ptr<LayerState>* state, std::vector<std::string>* candidates, int max_candidates,
                   cudaStream_t stream);

 private:
  void fill_launch(LaunchContext& lc, size_t i, const std::map<std::string, void*>& io, cudaStream_t stream);
  void* resolve(const Value* v, const std::map<std::string, void*>& io) const;
  std::vector<int64_t> dims_of(const Value* v) const;
  Status run_fallback(const Layer& l, LaunchContext& lc, const std::map<std::string, void*>& io, const OutputSink& sink);
  Expected<Tensor> to_host(const DeviceTensor& d, cudaStream_t stream);

  CudaEngine& engine_;
  cublasLtHandle_t cublaslt_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  int device_ = -1;  // the handles' device
  void* workspace_ = nullptr;
  void* arena_ = nullptr;
  uint64_t arena_capacity_ = 0, arena_size_ = 0;
  void* consts_ = nullptr;  // host-evaluated values that device layers read, uploaded at prepare
  const ValueShapes* shapes_ = nullptr;
  std::vector<bool> skip_;                      // per layer: outputs known on the host
  std::vector<bool> dynamic_;                   // per layer: output shape data-dependent: CPU for now
  std::map<const Value*, uint64_t> offset_;     // arena placement
  std::map<const Value*, const Value*> alias_;  // view output -> the value whose bytes it shows
  std::map<const Value*, Tensor> host_dyn_;     // data-dependent shapes: CPU fallback results, this run
  std::map<const Value*, void*> const_ptr_;
  std::vector<std::unique_ptr<LayerState>> states_;  // per layer: the kernel's plans in this context
  // KILN_HOST_TIMES=1: host seconds spent launching, per op and tactic family, and per enqueue
  // (an enqueue without a CUDA graph is bound by them); logged when the context goes.
  std::map<std::string, std::pair<double, long>> host_times_;
};

// The engine of a graph with its context prepared at `shapes` (the opt shapes), its inputs,
// outputs and arena holding arbitrary but finite numbers: what build-time selection and tuning run.
struct OptShapeRun {
  std::unique_ptr<BackendEngine> engine;
  std::unique_ptr<CudaContext> ctx;
  std::map<std::string, void*> io;
  std::vector<void*> owned;  // io buffers
  ~OptShapeRun();
  static Expected<std::unique_ptr<OptShapeRun>> make(const Graph& graph, const ValueShapes& shapes,
                                                     const EngineOptions& options, const std::vector<std::string>& tactics);
};

}  // namespace kiln::cuda
