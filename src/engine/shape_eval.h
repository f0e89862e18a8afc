// Host-side shape evaluation: given concrete input shapes, computes every value's shape, and
// the values of small integer tensors on the way (Shape -> Gather -> Concat -> Reshape chains),
// by running shape inference and, where all inputs are known and the result is small, the CPU
// kernel. Runs at build time (profile checks) and at setInputShape, never per inference.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::engine {

struct ShapeEval {
  std::map<const Value*, std::vector<int64_t>> dims;  // static shape of each value it could fix
  std::map<const Value*, Tensor> values;              // small values it computed on the host
};

Expected<ShapeEval> evaluate_shapes(const Graph& graph, const std::map<std::string, std::vector<int64_t>>& input_dims);

// Bytes of the largest set of activations alive at once in graph order: the lower bound of
// any activation arena at these shapes (what the memory planner is measured against).
uint64_t peak_live_bytes(const Graph& graph, const ShapeEval& shapes);

}  // namespace kiln::engine
