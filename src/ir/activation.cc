#include "ir/activation.h"

#include <array>
#include <utility>

namespace kiln {

namespace {

constexpr std::array<std::pair<Activation, const char*>, 10> kNames = {{
    {Activation::kNone, ""},
    {Activation::kRelu, "Relu"},
    {Activation::kClip, "Clip"},
    {Activation::kSigmoid, "Sigmoid"},
    {Activation::kTanh, "Tanh"},
    {Activation::kSilu, "Silu"},
    {Activation::kGelu, "Gelu"},
    {Activation::kGeluTanh, "GeluTanh"},
    {Activation::kLeakyRelu, "LeakyRelu"},
    {Activation::kHardSwish, "HardSwish"},
}};

}  // namespace

std::optional<Activation> parse_activation(const std::string& name) {
  for (const auto& [a, n] : kNames) if (name == n) return a;
  return std::nullopt;
}

const char* activation_name(Activation a) {
  for (const auto& [x, n] : kNames) if (x == a) return n;
  return "?";
}

bool slot_takes(ActivationSlot slot, Activation a) {
  switch (slot) {
    case ActivationSlot::kConvAct:
      return a == Activation::kNone || a == Activation::kRelu || a == Activation::kClip || a == Activation::kSilu;
    case ActivationSlot::kConvActInput: return a == Activation::kNone || a == Activation::kClip || a == Activation::kSilu;
    case ActivationSlot::kMatMulBias: return a == Activation::kNone || a == Activation::kRelu || a == Activation::kGelu;
  }
  return false;
}

Expected<Activation> read_activation(const Node& node, const std::string& key, ActivationSlot slot) {
  const std::string name = node.attr_string(key, "");
  std::optional<Activation> a = parse_activation(name);
  if (a && slot_takes(slot, *a)) return *a;
  std::string takes;
  for (const auto& [x, n] : kNames)
    if (x != Activation::kNone && slot_takes(slot, x)) takes += std::string(takes.empty() ? "" : ", ") + n;
  return err("unknown ", key, " '", name, "' (", node.domain, ".", node.op_type, " takes ", takes, " or none)");
}

std::optional<Activation> activation_of(const Node& node) {
  if (!node.domain.empty()) return std::nullopt;
  const std::string& op = node.op_type;
  if (op == "Gelu") return node.attr_string("approximate", "none") == "tanh" ? Activation::kGeluTanh : Activation::kGelu;
  if (op == "Silu") return std::nullopt;  // not an ONNX op: SiLU is Mul(x, Sigmoid(x))
  std::optional<Activation> a = parse_activation(op);
  return a == Activation::kNone ? std::nullopt : a;
}

}  // namespace kiln
