// ir/activation.h: every name round-trips, each fused op's slot takes exactly what its kernels
// implement (unknown or untaken names: one clear error), ONNX nodes map to their activation, and
// the CPU reference epilogue computes each activation.
#include "ir/activation.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

TEST(ActivationVocabulary, NamesRoundTrip) {
  for (Activation a : {Activation::kNone, Activation::kRelu, Activation::kClip, Activation::kSigmoid, Activation::kTanh,
                       Activation::kSilu, Activation::kGelu, Activation::kGeluTanh, Activation::kLeakyRelu,
                       Activation::kHardSwish})
    EXPECT_EQ(parse_activation(activation_name(a)), a) << activation_name(a);
  EXPECT_FALSE(parse_activation("relu"));
  EXPECT_FALSE(parse_activation("Swish"));
}

TEST(ActivationVocabulary, SlotsTakeWhatTheKernelsImplement) {
  Node n;
  n.domain = "kiln";
  n.op_type = "ConvAct";
  n.attrs["activation"] = std::string("Silu");
  EXPECT_EQ(*read_activation(n, "activation", ActivationSlot::kConvAct), Activation::kSilu);
  EXPECT_EQ(*read_activation(n, "input_activation", ActivationSlot::kConvActInput), Activation::kNone);  // absent
  n.attrs["activation"] = std::string("Gelu");
  auto bad = read_activation(n, "activation", ActivationSlot::kConvAct);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(), "unknown activation 'Gelu' (kiln.ConvAct takes Relu, Clip, Silu or none)");
  n.attrs["input_activation"] = std::string("Relu");
  EXPECT_EQ(read_activation(n, "input_activation", ActivationSlot::kConvActInput).status().message(),
            "unknown input_activation 'Relu' (kiln.ConvAct takes Clip, Silu or none)");
  EXPECT_TRUE(slot_takes(ActivationSlot::kMatMulBias, Activation::kGelu));
  EXPECT_FALSE(slot_takes(ActivationSlot::kMatMulBias, Activation::kSilu));
}

TEST(ActivationVocabulary, OnnxNodes) {
  Node n;
  n.op_type = "Gelu";
  EXPECT_EQ(activation_of(n), Activation::kGelu);
  n.attrs["approximate"] = std::string("tanh");
  EXPECT_EQ(activation_of(n), Activation::kGeluTanh);
  n.op_type = "HardSwish";
  EXPECT_EQ(activation_of(n), Activation::kHardSwish);
  n.op_type = "Conv";
  EXPECT_FALSE(activation_of(n));
  n.op_type = "Relu";
  n.domain = "kiln";
  EXPECT_FALSE(activation_of(n));
}

TEST(ActivationVocabulary, CpuEpilogue) {
  const double inf = INFINITY;
  EXPECT_EQ(apply_activation(Activation::kRelu, -2.f, -inf, inf), 0.f);
  EXPECT_EQ(apply_activation(Activation::kClip, 7.f, 0, 6), 6.f);
  EXPECT_NEAR(apply_activation(Activation::kSilu, 1.0, -inf, inf), 1.0 / (1.0 + std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(apply_activation(Activation::kGelu, 1.0, -inf, inf), 0.8413447460685429, 1e-12);
  EXPECT_NEAR(apply_activation(Activation::kGeluTanh, 1.0, -inf, inf), 0.8411919906082768, 1e-12);
  EXPECT_NEAR(apply_activation(Activation::kSigmoid, 0.0, -inf, inf), 0.5, 1e-12);
  EXPECT_NEAR(apply_activation(Activation::kTanh, 1.0, -inf, inf), std::tanh(1.0), 1e-12);
  EXPECT_NEAR(apply_activation(Activation::kLeakyRelu, -2.0, -inf, inf, 0.1), -0.2, 1e-12);
  EXPECT_NEAR(apply_activation(Activation::kHardSwish, 1.0, -inf, inf), 1.0 * 4.0 / 6.0, 1e-12);
}

}  // namespace
}  // namespace kiln
