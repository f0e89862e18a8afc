// Per-output-channel symmetric INT8 scales of the weights of the layers TensorRT quantizes
// (Conv, Gemm, MatMul and kiln's fused ConvAct / MatMulBias): scale[c] = max |W[c, ...]| / 127
// along the output-channel axis. Computed at build from the optimized graph (after BatchNorm
// folding), never cached, as TensorRT does.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::quant {

struct WeightScales {
  std::string tensor;  // the weight initializer
  std::string layer;   // the node that reads it
  int axis = 0;        // the output-channel axis of the weight
  std::vector<float> scales;
};

std::vector<WeightScales> weight_scales(const Graph& graph);
// Whether the layer is one TensorRT runs in INT8 (its inputs and weights get quantized).
bool is_quantizable_layer(const Node& n);

}  // namespace kiln::quant
