#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor f32(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::from_vector<float>(dims, v); }
// Two overlapping boxes and one far away, in [y1, x1, y2, x2].
Tensor three_boxes() { return f32({1, 3, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 5, 5, 6, 6}); }
}  // namespace

TEST(NonMaxSuppression, SuppressesOverlapsKeepsHighestFirst) {
  auto y = run_op("NonMaxSuppression", {three_boxes(), f32({1, 1, 3}, {0.8f, 0.9f, 0.3f}),
                                        Tensor::from_vector<int64_t>({1}, {10}), f32({1}, {0.5f})},
                  {}, 1, 11);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int64_t>({2, 3}, {0, 0, 1, 0, 0, 2})));
}

TEST(NonMaxSuppression, ScoreThresholdAndOutputLimit) {
  auto y = run_op("NonMaxSuppression", {three_boxes(), f32({1, 1, 3}, {0.8f, 0.9f, 0.3f}),
                                        Tensor::from_vector<int64_t>({1}, {1}), f32({1}, {1.0f}), f32({1}, {0.85f})},
                  {}, 1, 11);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int64_t>({1, 3}, {0, 0, 1})));
}

TEST(NonMaxSuppression, NoLimitGivenSelectsNothing) {
  auto y = run_op("NonMaxSuppression", {three_boxes(), f32({1, 1, 3}, {0.8f, 0.9f, 0.3f})}, {}, 1, 11);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{0, 3}));
}

TEST(NonMaxSuppression, RejectsMismatchedScores) {
  auto y = run_op("NonMaxSuppression", {three_boxes(), f32({1, 1, 2}, {0.8f, 0.9f})}, {}, 1, 11);
  ASSERT_FALSE(y.is_ok());
}

}  // namespace kiln::testing
