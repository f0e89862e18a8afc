#include "quant/weight_scales.h"

#include <algorithm>
#include <cmath>

namespace kiln::quant {

namespace {

// The output-channel axis of node n's weight (input 1), or -1 when it has none to quantize.
int output_channel_axis(const Node& n, const Tensor& w) {
  const bool onnx = n.domain.empty() || n.domain == "ai.onnx";
  if (w.rank() < 2) return -1;
  if ((onnx && n.op_type == "Conv") ||
      (n.domain == "kiln" && n.op_type == "ConvAct")) {
    if (n.attr_string("layout", "NCHW") == "NHWC" && n.attr_string("weight_layout", "MHWC") == "HWCM")
      return static_cast<int>(w.rank()) - 1;
    return 0;
  }
  if (onnx && n.op_type == "Gemm") return n.attr_int("transB", 0) ? 0 : 1;
  if ((onnx && n.op_type == "MatMul") || (n.domain == "kiln" && n.op_type == "MatMulBias"))
    return static_cast<int>(w.rank()) - 1;
  return -1;
}

}  // namespace

bool is_quantizable_layer(const Node& n) {
  const bool onnx = n.domain.empty() || n.domain == "ai.onnx";
  return (onnx && (n.op_type == "Conv" || n.op_type == "Gemm" || n.op_type == "MatMul")) ||
         (n.domain == "kiln" && (n.op_type == "ConvAct" || n.op_type == "MatMulBias"));
}

std::vector<WeightScales> weight_scales(const Graph& g) {
  std::vector<WeightScales> out;
  for (const auto& n : g.nodes()) {
    if (!is_quantizable_layer(*n) || n->inputs.size() < 2 || !n->inputs[1] || !n->inputs[1]->initializer) continue;
    const Tensor& w = *n->inputs[1]->initializer;
    if (!dtype_is_float(w.dtype())) continue;
    const int axis = output_channel_axis(*n, w);
    if (axis < 0) continue;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; ++k) outer *= w.dim(k);
    for (size_t k = axis + 1; k < w.rank(); ++k) inner *= w.dim(k);
    const int64_t channels = w.dim(axis);
    std::vector<double> amax(static_cast<size_t>(channels), 0.0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t i = 0; i < inner; ++i) {
          const double v = std::fabs(w.get_as_double((o * channels + c) * inner + i));
          if (std::isfinite(v)) amax[c] = std::max(amax[c], v);
        }
    WeightScales ws{n->inputs[1]->name, n->name, axis, {}};
    for (double a : amax) ws.scales.push_back(static_cast<float>(a / 127.0));
    out.push_back(std::move(ws));
  }
  return out;
}

}  // namespace kiln::quant
