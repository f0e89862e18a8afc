// INT8 on the CPU reference backend, simulated: TensorRT's placement of quantization on the
// optimized graph, computed in float32. Each quantizable layer (weight_scales.h) whose input 0 is
// a float32 tensor with a calibrated scale s reads it through
//   QuantizeLinear(x, s, int8 0) -> DequantizeLinear        (round half to even, saturate to
//                                                             [-128, 127])
// and its float32 weight is replaced by the per-output-channel fake-quantized copy
//   clip(round_half_even(w / s_c), -127, 127) * s_c          (s_c = max |w_c| / 127)
// so the engine's outputs are what INT8 kernels with float accumulation and these scales give.
// before:  %y = kiln.ConvAct(%x, %w, %b)
// after:   %x_q = QuantizeLinear(%x, %x_int8_scale, %x_int8_zero)
//          %x_dq = DequantizeLinear(%x_q, %x_int8_scale, %x_int8_zero)
//          %y = kiln.ConvAct(%x_dq, %w_int8, %b)
// Tensors with a zero scale (all zero in calibration) stay as they are. Each quantized layer
// keeps its float32 inputs at hand, so set_int8() can move it back to float (the accuracy guard
// and precision constraints do); remove_unused_qdq() then drops what no layer reads.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "quant/weight_scales.h"

namespace kiln::quant {

struct QuantizedLayer {
  Node* node = nullptr;
  Value *x = nullptr, *x_dq = nullptr;  // input 0: float32, and quantized-dequantized
  Value *w = nullptr, *w_q = nullptr;   // input 1: float32 weight, and its fake-quantized copy
};
struct FakeQuantized {
  std::vector<QuantizedLayer> layers;  // the layers whose input and weight were quantized
};

// `keep_float`: layers that stay float (precision constraints); null: none.
Expected<FakeQuantized> fake_quantize(Graph& g, const std::map<std::string, float>& activation_scales,
                                      const std::vector<WeightScales>& weights,
                                      const std::function<bool(const Node&)>& keep_float = nullptr);
// Points the layer at its quantized (on) or float32 (off) input and weight.
void set_int8(const QuantizedLayer& layer, bool on);
// Removes the Quantize/Dequantize pairs fake_quantize inserted that no layer reads any more.
void remove_unused_qdq(Graph& g);

// The INT8 step of a build after the passes, on the optimized graph: the weights' per-channel
// scales, and on the CPU backend (`simulate`) fake_quantize with the calibrated activation scales.
// The log says what runs how (there are no INT8 kernels yet).
struct Int8Layers {
  std::vector<WeightScales> weights;
  std::vector<QuantizedLayer> simulated;
};
Expected<Int8Layers> apply_int8(Graph& g, const std::vector<std::pair<std::string, float>>& activation_scales,
                                bool simulate, const std::function<bool(const Node&)>& keep_float = nullptr);

}  // namespace kiln::quant
