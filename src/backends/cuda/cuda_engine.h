// The CUDA backend behind the engine runtime. Weights are uploaded once per engine; each
// context owns one activation arena laid out by the memory planner for its current shapes,
// its cuBLASLt/cuDNN handles and a workspace. Nodes whose outputs the host already knows
// (shape arithmetic) never run on the device; nodes without a CUDA kernel run on the CPU as
// fallback layers (copy in, run, copy out), shown as tactic "cpu.fallback".
#pragma once
#include <string>
#include <vector>

#include "backends/backend.h"

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

constexpr const char* kFallbackTactic = "cpu.fallback";

// Build-time choice for one node: a CUDA tactic id, or kFallbackTactic with the reason.
std::string choose_tactic(const Node& node, std::string* fallback_reason);

struct EngineOptions {
  uint64_t workspace_bytes = uint64_t(256) << 20;
  bool tf32 = true;
};

// `tactics` holds one id per node (from the engine file). Fails if a tactic is unknown to
// this build or the device cannot hold the weights.
Expected<std::unique_ptr<BackendEngine>> create_engine(const Graph& graph, const std::vector<std::string>& tactics,
                                                       const EngineOptions& options);

}  // namespace kiln::cuda
