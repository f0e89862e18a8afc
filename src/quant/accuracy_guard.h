// The INT8 accuracy guard (kiln's own; TensorRT leaves users to bisect accuracy by hand). On the
// optimized graph with its layers fake-quantized (fake_quantize.h), it measures the output error
// of INT8 against the same graph with every layer in float:
//   error = sqrt(sum over batches and float outputs of |y_int8 - y_float|^2 / sum |y_float|^2)
// and, when that is above the tolerance, each layer's sensitivity (the relative L2 error INT8
// gives at the layer's own output, on the float graph's activations: one float run and one
// evaluation of each layer), then keeps the fewest most sensitive layers in float that bring the
// output error within the tolerance (a doubling then binary search over their number: O(log n)
// whole-network runs), or all of them when none does.
// Layers `pinned` (an obeyed int8 constraint) are never moved.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "quant/fake_quantize.h"

namespace kiln::quant {

struct GuardLayer {
  std::string layer;
  double sensitivity = 0;  // the relative L2 error INT8 gives at this layer's output
  double error_after = -1;  // the output error with this layer and those before it in float (-1: not measured)
};

struct GuardReport {
  double error_all = 0;    // every layer in INT8
  double error_final = 0;  // after the guard
  std::vector<GuardLayer> kept;  // moved back to float, most sensitive first
};

// Sensitivity = 0 tolerance measures only error_all. Leaves the graph with the kept layers in
// float and the others in INT8.
Expected<GuardReport> accuracy_guard(Graph& g, const std::vector<QuantizedLayer>& layers,
                                     const std::vector<std::map<std::string, Tensor>>& batches, double tolerance,
                                     const std::function<bool(const Node&)>& pinned = nullptr);

// `count` seeded standard-normal inputs at `shapes` (graph input -> dims), for a guard without
// calibration batches (a calibration cache). Float32 inputs only: another type is an error.
Expected<std::vector<std::map<std::string, Tensor>>> random_guard_inputs(
    const Graph& g, const std::map<std::string, std::vector<int64_t>>& shapes, int count);

}  // namespace kiln::quant
