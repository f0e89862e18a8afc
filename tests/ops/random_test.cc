// The random ops: shapes and types, the value ranges, determinism for a given seed (kiln's own
// generator: the values are not numpy's), Bernoulli's edge probabilities and bad input.
#include <cmath>

#include "tests/ops/op_test.h"

namespace kiln::testing {

TEST(Random, UniformSeededIsDeterministicAndInRange) {
  std::map<std::string, AttrValue> a = {{"shape", std::vector<int64_t>{4, 250}}, {"low", -2.0f}, {"high", 3.0f},
                                        {"seed", 7.0f}, {"dtype", int64_t(11)}};
  auto y1 = run_op("RandomUniform", {}, a, 1, 22), y2 = run_op("RandomUniform", {}, a, 1, 22);
  ASSERT_TRUE(y1.is_ok()) << y1.status().message();
  ASSERT_TRUE(y2.is_ok());
  const Tensor& t = (*y1)[0];
  EXPECT_EQ(t.dtype(), DataType::kFloat64);
  EXPECT_EQ(t.dims(), (std::vector<int64_t>{4, 250}));
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    EXPECT_GE(t.get_as_double(i), -2.0);
    EXPECT_LT(t.get_as_double(i), 3.0);
    EXPECT_EQ(t.get_as_double(i), (*y2)[0].get_as_double(i));
    sum += t.get_as_double(i);
  }
  EXPECT_NEAR(sum / t.numel(), 0.5, 0.2);
  a["seed"] = 8.0f;
  auto y3 = run_op("RandomUniform", {}, a, 1, 22);
  ASSERT_TRUE(y3.is_ok());
  EXPECT_NE(t.get_as_double(0), (*y3)[0].get_as_double(0));
}

TEST(Random, NormalLikeTakesShapeAndTypeOfInput) {
  Tensor x = Tensor::zeros(DataType::kFloat16, {100, 40}).value();
  auto y = run_op("RandomNormalLike", {x}, {{"mean", 5.0f}, {"scale", 2.0f}, {"seed", 1.0f}}, 1, 22);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  const Tensor& t = (*y)[0];
  EXPECT_EQ(t.dtype(), DataType::kFloat16);
  EXPECT_EQ(t.dims(), x.dims());
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += t.get_as_double(i);
    sq += t.get_as_double(i) * t.get_as_double(i);
  }
  const double mean = sum / t.numel(), var = sq / t.numel() - mean * mean;
  EXPECT_NEAR(mean, 5.0, 0.2);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.2);
}

TEST(Random, UniformLikeDtypeAttributeOverridesInput) {
  Tensor x = Tensor::zeros(DataType::kInt32, {3}).value();
  auto y = run_op("RandomUniformLike", {x}, {{"dtype", int64_t(1)}}, 1, 22);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dtype(), DataType::kFloat32);
  auto bad = run_op("RandomUniformLike", {x}, {}, 1, 22);  // int32 output is not allowed
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("int32"), std::string::npos) << bad.status().message();
}

TEST(Random, BernoulliEdgeProbabilitiesAndOutputType) {
  Tensor p = Tensor::from_vector<float>({4}, {0, 1, 0, 1});
  auto y = run_op("Bernoulli", {p}, {{"dtype", int64_t(9)}}, 1, 22);  // bool
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<bool>({4}, {false, true, false, true})));
  auto same = run_op("Bernoulli", {p}, {}, 1, 22);
  ASSERT_TRUE(same.is_ok());
  EXPECT_TRUE(tensors_near((*same)[0], p));
}

TEST(Random, BernoulliRejectsProbabilityOutsideUnitInterval) {
  auto y = run_op("Bernoulli", {Tensor::from_vector<float>({2}, {0.5f, 1.5f})}, {}, 1, 22);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("Bernoulli_under_test"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("'x0' holds 1.5 at element 1"), std::string::npos) << y.status().message();
}

}  // namespace kiln::testing
