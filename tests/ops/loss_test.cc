#include <cmath>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
// log-probabilities of 2 samples over 3 classes
const Tensor kLogp = Tensor::from_vector<float>({2, 3}, {-1, -2, -3, -4, -5, -6});
}  // namespace

TEST(Loss, NllMeanSkipsIgnoredTargets) {
  Tensor t = Tensor::from_vector<int64_t>({2}, {1, 2});
  auto y = run_op("NegativeLogLikelihoodLoss", {kLogp, t}, {{"ignore_index", int64_t(2)}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::scalar<float>(2)));
}

TEST(Loss, NllWeightedMeanDividesByWeightSum) {
  Tensor t = Tensor::from_vector<int32_t>({2}, {0, 2});
  Tensor w = Tensor::from_vector<float>({3}, {1, 0, 3});
  auto y = run_op("NegativeLogLikelihoodLoss", {kLogp, t, w}, {}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::scalar<float>((1 * 1 + 3 * 6) / 4.0f)));
}

TEST(Loss, NllNoneKeepsTargetShape) {
  Tensor t = Tensor::from_vector<int64_t>({2}, {2, 0});
  auto y = run_op("NegativeLogLikelihoodLoss", {kLogp, t}, {{"reduction", std::string("none")}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2}, {3, 4})));
}

TEST(Loss, NllRejectsTargetOutOfRange) {
  auto y = run_op("NegativeLogLikelihoodLoss", {kLogp, Tensor::from_vector<int64_t>({2}, {0, 3})}, {}, 1, 13);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

TEST(Loss, SoftmaxCrossEntropySumWithLogProb) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {0, 1000, 0, 1000});  // [N=1, C=2, D=2]
  Tensor t = Tensor::from_vector<int64_t>({1, 2}, {0, 1});
  auto y = run_op("SoftmaxCrossEntropyLoss", {x, t}, {{"reduction", std::string("sum")}}, 2, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // Position 0: classes {0, 0} -> -log(1/2); position 1: classes {1000, 1000} -> -log(1/2).
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::scalar<float>(2 * std::log(2.0f))));
  EXPECT_TRUE(tensors_near((*y)[1], Tensor::from_vector<float>({1, 2, 2}, {-std::log(2.0f), -std::log(2.0f),
                                                                           -std::log(2.0f), -std::log(2.0f)})));
}

TEST(Loss, RejectsMismatchedTargetShape) {
  auto y = run_op("SoftmaxCrossEntropyLoss", {kLogp, Tensor::from_vector<int64_t>({3}, {0, 0, 0})}, {}, 1, 13);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("target"), std::string::npos) << y.status().message();
}

}  // namespace kiln::testing
