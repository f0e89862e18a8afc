// Activation memory planning ("dynamic tensor memory"): lifetimes from the execution order,
// then offsets in one arena. Values that are views of another (Reshape, Squeeze, ...) share
// their source's block and extend its lifetime. Placement is best-fit over the free gaps,
// largest tensors first; the plan reports its arena size and the lower bound (the largest sum
// of tensors alive at one moment), so the ratio is measurable.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "backends/backend.h"

namespace kiln {

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

// The plan for a graph at given shapes: every value a running layer writes, except graph inputs
// and outputs (the caller's buffers) and values the host already knows. `runs(i)`: whether
// layer i runs; `is_view(i)`: whether its output 0 is input 0's bytes (no block of its own).
struct GraphMemoryPlan {
  std::map<const Value*, uint64_t> offsets;        // arena offset of each planned value
  std::map<const Value*, const Value*> aliases;    // view output -> the value it shows
  uint64_t arena_bytes = 0, lower_bound = 0;
};
GraphMemoryPlan plan_graph_memory(const Graph& graph, const ValueShapes& shapes,
                                  const std::function<bool(size_t)>& runs,
                                  const std::function<bool(size_t)>& is_view);

// Ops whose output is a view of input 0 on every backend (Reshape, Flatten, Squeeze, ...).
bool is_view_op(const Node& n);

}  // namespace kiln
