#include <cmath>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor f32(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::from_vector<float>(dims, v); }

// One query [1, 0] over keys [1, 0] and [0, 1] with values 1 and 3, default scale 1/sqrt(2).
std::vector<Tensor> tiny_qkv() {
  return {f32({1, 1, 1, 2}, {1, 0}), f32({1, 1, 2, 2}, {1, 0, 0, 1}), f32({1, 1, 2, 1}, {1, 3})};
}
}  // namespace

TEST(Attention, SingleHeadSoftmaxWeightsValues) {
  auto y = run_op("Attention", tiny_qkv(), {}, 1, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  const double e = std::exp(1 / std::sqrt(2.0)), p0 = e / (e + 1);
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1}, {float(p0 * 1 + (1 - p0) * 3)})));
}

TEST(Attention, BoolMaskAndQkOutputAfterSoftmax) {
  std::vector<Tensor> in = tiny_qkv();
  in.push_back(Tensor::from_vector<bool>({1, 2}, {false, true}));  // only key 1 visible
  auto y = run_op("Attention", in, {{"qk_matmul_output_mode", int64_t(3)}}, 4, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1}, {3})));
  EXPECT_TRUE(tensors_near((*y)[3], f32({1, 1, 1, 2}, {0, 1})));
}

TEST(Attention, FullyMaskedRowIsZero) {
  std::vector<Tensor> in = tiny_qkv();
  in.push_back(Tensor::from_vector<bool>({1, 2}, {false, false}));
  auto y = run_op("Attention", in, {}, 1, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1}, {0})));
}

TEST(Attention, PastKeyValueConcatenateIntoPresent) {
  std::vector<Tensor> in = {f32({1, 1, 1, 2}, {1, 0}), f32({1, 1, 1, 2}, {0, 1}), f32({1, 1, 1, 1}, {3}),
                            Tensor(), f32({1, 1, 1, 2}, {1, 0}), f32({1, 1, 1, 1}, {1})};
  auto y = run_op("Attention", in, {}, 3, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  const double e = std::exp(1 / std::sqrt(2.0)), p0 = e / (e + 1);
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1}, {float(p0 * 1 + (1 - p0) * 3)})));
  EXPECT_TRUE(tensors_near((*y)[1], f32({1, 1, 2, 2}, {1, 0, 0, 1})));
  EXPECT_TRUE(tensors_near((*y)[2], f32({1, 1, 2, 1}, {1, 3})));
}

TEST(Attention, ThreeDGroupedQueryMatchesRepeatedHeads) {
  // 2 query heads share 1 kv head; each query head sees the same keys.
  std::vector<Tensor> in = {f32({1, 1, 4}, {1, 0, 1, 0}), f32({1, 2, 2}, {1, 0, 0, 1}), f32({1, 2, 1}, {1, 3})};
  auto y = run_op("Attention", in, {{"q_num_heads", int64_t(2)}, {"kv_num_heads", int64_t(1)}}, 1, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  const float v = float(std::exp(1 / std::sqrt(2.0)) / (std::exp(1 / std::sqrt(2.0)) + 1) * -2 + 3);
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2}, {v, v})));
}

TEST(Attention, InconsistentHeadCountsNameBoth) {
  std::vector<Tensor> in = {f32({1, 1, 6}, {}), f32({1, 2, 4}, {}), f32({1, 2, 4}, {})};
  auto y = run_op("Attention", in, {{"q_num_heads", int64_t(3)}, {"kv_num_heads", int64_t(2)}}, 1, 23);
  ASSERT_FALSE(y.is_ok());
  const std::string& m = y.status().message();
  EXPECT_NE(m.find("Attention_under_test"), std::string::npos) << m;
  EXPECT_NE(m.find("q_num_heads 3"), std::string::npos) << m;
  EXPECT_NE(m.find("kv_num_heads 2"), std::string::npos) << m;
}

TEST(Attention, CausalMasksFutureKeys) {
  std::vector<Tensor> in = {f32({1, 1, 2, 1}, {1, 1}), f32({1, 1, 2, 1}, {0, 0}), f32({1, 1, 2, 1}, {2, 4})};
  auto y = run_op("Attention", in, {{"is_causal", int64_t(1)}}, 1, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2, 1}, {2, 3})));
}

TEST(RotaryEmbedding, RotatesHalvesByPosition) {
  // head size 2: (x1, x2) -> (cos x1 - sin x2, sin x1 + cos x2); position 1 rotates by 90 degrees.
  Tensor x = f32({1, 1, 2, 2}, {1, 2, 1, 2});
  Tensor cos = f32({2, 1}, {1, 0}), sin = f32({2, 1}, {0, 1});
  Tensor pos = Tensor::from_vector<int64_t>({1, 2}, {0, 1});
  auto y = run_op("RotaryEmbedding", {x, cos, sin, pos}, {}, 1, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2, 2}, {1, 2, -2, 1})));
}

TEST(RotaryEmbedding, RejectsPositionOutsideCache) {
  Tensor x = f32({1, 1, 1, 2}, {1, 2});
  auto y = run_op("RotaryEmbedding", {x, f32({1, 1}, {1}), f32({1, 1}, {0}), Tensor::from_vector<int64_t>({1, 1}, {5})},
                  {}, 1, 23);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("position id 5"), std::string::npos) << y.status().message();
}

TEST(RMSNormalization, LastAxis) {
  auto y = run_op("RMSNormalization", {f32({1, 2}, {3, 4}), f32({2}, {1, 2})}, {{"epsilon", 0.0f}}, 1, 23);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  const float rms = float(std::sqrt(12.5));
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 2}, {3 / rms, 8 / rms})));
}

TEST(TensorScatter, CircularWrapsAround) {
  Tensor cache = f32({1, 3, 1}, {0, 0, 0});
  Tensor update = f32({1, 2, 1}, {7, 8});
  auto y = run_op("TensorScatter", {cache, update, Tensor::from_vector<int64_t>({1}, {2})},
                  {{"mode", std::string("circular")}}, 1, 24);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 3, 1}, {8, 0, 7})));
}

TEST(Swish, AlphaScalesTheGate) {
  auto y = run_op("Swish", {f32({1}, {2})}, {{"alpha", 0.5f}}, 1, 24);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1}, {float(2 / (1 + std::exp(-1.0)))})));
}

}  // namespace kiln::testing
