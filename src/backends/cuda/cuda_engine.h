// The CUDA backend behind the engine runtime. Weights are uploaded once per engine; each
// context owns one activation arena laid out by the memory planner for its current shapes,
// its cuBLASLt/cuDNN handles, a workspace and its layers' plans (per-context state). Nodes whose
// outputs the host already knows (shape arithmetic) never run on the device; layers the builder
// gave to the CPU (kHostFallbackTactic) run on the host through the engine's HostLayerFn (copy
// in, run, copy out). cuda_backend.cc is the backend's registry entry.
#pragma once
#include <string>
#include <vector>

#include "backends/registry.h"

namespace kiln::cuda {

struct DeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_memory = 0;
  int cudnn_version = 0, cublaslt_version = 0, runtime_version = 0;
};

// The GPU kiln would run on, or why none is usable (no driver, no device, wrong library).
// The calling thread's current device (cudaSetDevice; what the CLI's --device picks) by default.
Expected<DeviceInfo> query_device(int ordinal = -1);

struct EngineOptions {
  uint64_t workspace_bytes = uint64_t(256) << 20;
  bool tf32 = true;
  HostLayerFn host;  // runs the kHostFallbackTactic layers (and data-dependent ones) on the host
};

// Build time, on this GPU at `shapes` (the opt shapes): the tactic id of every layer not given to
// the host ("" in `tactics` on entry). A kernel that picks an algorithm runs its layer once on
// buffers of arbitrary contents and names the algorithm in the id; layers the opt shapes leave to
// the host record "<family>.heuristic" (their kernel's heuristic picks per shape).
Status select_tactics(const Graph& graph, const ValueShapes& shapes, const EngineOptions& options,
                      std::vector<std::string>& tactics);

// Build time, tuning (cuda_tuning.cc; used only with an explicit --builderOptimizationLevel until
// it has run on a GPU): times the candidates of the selecting layers at `shapes`; `tactics` holds
// select_tactics' picks. Null when no layer selects.
Expected<std::unique_ptr<TacticTimer>> make_tactic_timer(const Graph& graph, const ValueShapes& shapes,
                                                         const EngineOptions& options,
                                                         const std::vector<std::string>& tactics, int level);

// `tactics` holds one id per node (from the engine file). Fails if a tactic is unknown to
// this build or the device cannot hold the weights.
Expected<std::unique_ptr<BackendEngine>> create_engine(const Graph& graph, const std::vector<std::string>& tactics,
                                                       const EngineOptions& options);

// Adds the CUDA backend ("cuda") to the registry (engine/backend_list.cc).
void register_cuda_backend(BackendRegistry& r);

}  // namespace kiln::cuda
