// Activation memory planning ("dynamic tensor memory"): lifetimes from the execution order,
// then offsets in one arena. Values that are views of another (Reshape, Squeeze, ...) share
// their source's block and extend its lifetime. Placement is best-fit over the free gaps,
// largest tensors first; the plan reports its arena size and the lower bound (the largest sum
// of tensors alive at one moment), so the ratio is measurable.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln::engine {

struct PlanRequest {
  uint64_t bytes = 0;
  int first_use = 0;   // index of the step that writes it (-1: alive from the start, e.g. inputs)
  int last_use = 0;    // index of the last step that reads it (INT32_MAX: alive to the end)
  int alias_of = -1;   // index of the request whose block this one views, or -1
};

struct MemoryPlan {
  std::vector<uint64_t> offsets;  // per request
  uint64_t arena_bytes = 0;
  uint64_t lower_bound = 0;       // max over steps of live bytes
};

// Alignment of every block (bytes); 256 suits every CUDA vector load and cuBLAS/cuDNN.
constexpr uint64_t kBlockAlignment = 256;

MemoryPlan plan_memory(const std::vector<PlanRequest>& requests);

}  // namespace kiln::engine
