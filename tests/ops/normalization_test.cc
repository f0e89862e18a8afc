#include <cmath>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor vec(std::vector<float> v) { return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v); }
}  // namespace

TEST(Normalization, BatchNormInference) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {1, 3, 10, 20});
  auto y = run_op("BatchNormalization", {x, vec({1, 2}), vec({0, 1}), vec({2, 15}), vec({1, 25})},
                  {{"epsilon", 0.0f}}, 1, 15);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 2, 2}, {-1, 1, -1, 3})));
}

TEST(Normalization, BatchNormTrainingUpdatesRunningStats) {
  Tensor x = Tensor::from_vector<float>({2, 1, 1}, {1, 3});  // batch mean 2, variance 1
  auto y = run_op("BatchNormalization", {x, vec({1}), vec({0}), vec({0}), vec({1})},
                  {{"epsilon", 0.0f}, {"momentum", 0.5f}, {"training_mode", int64_t(1)}}, 3, 15);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2, 1, 1}, {-1, 1})));
  EXPECT_TRUE(tensors_near((*y)[1], vec({1})));  // 0 * 0.5 + 2 * 0.5
  EXPECT_TRUE(tensors_near((*y)[2], vec({1})));  // 1 * 0.5 + 1 * 0.5
}

TEST(Normalization, BatchNormRejectsWrongParameterSize) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {});
  auto y = run_op("BatchNormalization", {x, vec({1, 2, 3}), vec({0, 1}), vec({0, 0}), vec({1, 1})}, {}, 1, 15);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("channels"), std::string::npos) << y.status().message();
}

TEST(Normalization, LayerNormWithStatsOutputs) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 3, 5, 5});
  auto y = run_op("LayerNormalization", {x, vec({1, 1}), vec({0, 10})}, {{"epsilon", 0.0f}}, 3, 17);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // Row 2 has zero variance: 1/sqrt(0) is inf and 0 * inf is NaN, as in the reference.
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2, 2}, {-1, 11, NAN, NAN})));
  EXPECT_TRUE(tensors_near((*y)[1], Tensor::from_vector<float>({2, 1}, {2, 5})));
  EXPECT_EQ((*y)[2].get_as_double(0), 1.0);
}

TEST(Normalization, InstanceNorm) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2}, {0, 2});
  auto y = run_op("InstanceNormalization", {x, vec({2}), vec({1})}, {{"epsilon", 0.0f}}, 1, 6);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 2}, {-1, 3})));
}

TEST(Normalization, GroupNormPerChannelScale) {
  Tensor x = Tensor::from_vector<float>({1, 4, 1}, {0, 2, 5, 5});
  auto y = run_op("GroupNormalization", {x, vec({1, 2, 1, 1}), vec({0, 0, 0, 7})},
                  {{"num_groups", int64_t(2)}, {"epsilon", 0.0f}}, 1, 21);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  Tensor got = (*y)[0];
  EXPECT_NEAR(got.get_as_double(0), -1, 1e-6);
  EXPECT_NEAR(got.get_as_double(1), 2, 1e-6);
}

TEST(Normalization, LrnAcrossChannels) {
  Tensor x = Tensor::from_vector<float>({1, 2, 1, 1}, {1, 2});
  auto y = run_op("LRN", {x}, {{"size", int64_t(2)}, {"alpha", 2.0f}, {"beta", 1.0f}, {"bias", 1.0f}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // Window of channel 0 is {0, 1}: 1 / (1 + 1 * 5); channel 1's is {1}: 2 / (1 + 4).
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 2, 1, 1}, {1.0f / 6, 2.0f / 5})));
}

TEST(Normalization, LpNormL1) {
  auto y = run_op("LpNormalization", {Tensor::from_vector<float>({2, 2}, {1, -3, 2, 2})}, {{"p", int64_t(1)}}, 1, 1);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2, 2}, {0.25, -0.75, 0.5, 0.5})));
}

TEST(Normalization, MeanVarianceNormalization) {
  auto y = run_op("MeanVarianceNormalization", {Tensor::from_vector<float>({1, 4}, {1, 3, 1, 3})},
                  {{"axes", std::vector<int64_t>{1}}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 4}, {-1, 1, -1, 1})));
}

}  // namespace kiln::testing
