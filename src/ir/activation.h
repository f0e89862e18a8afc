// The one activation vocabulary of kiln's fused layers: what kiln.ConvAct's `activation` and
// `input_activation` and kiln.MatMulBias's `activation` attributes hold, which of them each slot
// takes, the CPU reference epilogue, and the ONNX ops each activation is (for the fusion passes).
//
//   attribute  ""     "Relu"  "Clip"                 "Sigmoid"  "Tanh"  "Silu"         "Gelu"      "GeluTanh"   "LeakyRelu"  "HardSwish"
//   computes   x      max(x,0) min(max(x,lo),hi)     1/(1+e^-x) tanh x  x*sigmoid(x)   erf GELU    tanh GELU    alpha leak   x*relu6(x+3)/6
//
// Clip's bounds travel in separate attributes (act_min/act_max, in_act_min/in_act_max). The
// slots take only what every backend's kernels implement (the CUDA backend maps the same enum to
// its epilogues: conv_nhwc's Act, cuBLASLt's bias/ReLU/GELU); the rest of the vocabulary names
// what the graph may hold so that a fusion pass can say what it declined.
#pragma once
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "ir/graph.h"

namespace kiln {

enum class Activation { kNone, kRelu, kClip, kSigmoid, kTanh, kSilu, kGelu, kGeluTanh, kLeakyRelu, kHardSwish };

// The attribute spelling ("" is kNone); nullopt for an unknown name.
std::optional<Activation> parse_activation(const std::string& name);
const char* activation_name(Activation a);

// The activation slots of the fused ops, and what each takes.
enum class ActivationSlot {
  kConvAct,       // kiln.ConvAct activation: none, Relu, Clip, Silu
  kConvActInput,  // kiln.ConvAct input_activation: none, Clip, Silu
  kMatMulBias,    // kiln.MatMulBias activation: none, Relu, Gelu
};
bool slot_takes(ActivationSlot slot, Activation a);
// Reads node attribute `key` for `slot`: a clear error for an unknown name or one the slot does
// not take ("unknown activation 'Foo' (kiln.ConvAct takes Relu, Clip, Silu or none)").
Expected<Activation> read_activation(const Node& node, const std::string& key, ActivationSlot slot);

// The activation a single-input ONNX node computes as a whole (Relu, Sigmoid, Tanh, Gelu by
// its `approximate`, LeakyRelu, HardSwish; Clip for any Clip), else nullopt. SiLU is two nodes
// (Mul(x, Sigmoid(x))): the passes match it as a pattern.
std::optional<Activation> activation_of(const Node& node);

// The CPU reference epilogue: a(v), in the precisions the CPU kernels use (Relu and Gelu in C,
// the others in double); lo/hi are Clip's bounds, alpha LeakyRelu's slope.
template <class C>
C apply_activation(Activation a, C v, double lo, double hi, double alpha = 0.01) {
  switch (a) {
    case Activation::kNone: return v;
    case Activation::kRelu: return std::max(v, C(0));
    case Activation::kClip: return static_cast<C>(std::min(std::max(double(v), lo), hi));
    case Activation::kSilu: return static_cast<C>(double(v) / (1.0 + std::exp(-double(v))));
    case Activation::kGelu: return v * C(0.5) * (C(1) + C(std::erf(v / C(1.4142135623730951))));
    case Activation::kSigmoid: return static_cast<C>(1.0 / (1.0 + std::exp(-double(v))));
    case Activation::kTanh: return static_cast<C>(std::tanh(double(v)));
    case Activation::kGeluTanh: {
      const double x = double(v);
      return static_cast<C>(0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
    }
    case Activation::kLeakyRelu: return v < C(0) ? static_cast<C>(double(v) * alpha) : v;
    case Activation::kHardSwish: {
      const double x = double(v);
      return static_cast<C>(x * std::min(std::max(x + 3.0, 0.0), 6.0) / 6.0);
    }
  }
  return v;
}

}  // namespace kiln
