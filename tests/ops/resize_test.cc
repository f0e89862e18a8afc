#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor f32(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::from_vector<float>(dims, v); }
Tensor i64(std::vector<int64_t> dims, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(dims, v); }
}  // namespace

TEST(Resize, NearestUpsampleByScales) {
  auto y = run_op("Resize", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), f32({4}, {1, 1, 2, 2})},
                  {{"mode", std::string("nearest")}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 4, 4}, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4})));
}

TEST(Resize, LinearAlignCornersOneDimensional) {
  auto y = run_op("Resize", {f32({4}, {0, 1, 2, 3}), Tensor(), Tensor(), i64({1}, {7})},
                  {{"mode", std::string("linear")}, {"coordinate_transformation_mode", std::string("align_corners")}},
                  1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({7}, {0, 0.5f, 1, 1.5f, 2, 2.5f, 3})));
}

TEST(Resize, Opset10FormIsAsymmetricNearest) {
  auto y = run_op("Resize", {f32({1, 3}, {1, 2, 3}), f32({2}, {1, 2})}, {}, 1, 10);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 6}, {1, 1, 2, 2, 3, 3})));
}

TEST(Resize, UpsampleOpset7ScalesAttribute) {
  auto y = run_op("Upsample", {f32({2}, {1, 2})}, {{"scales", std::vector<float>{3}}}, 1, 7);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({6}, {1, 1, 1, 2, 2, 2})));
}

TEST(Resize, IntegerInputNearest) {
  auto y = run_op("Resize", {Tensor::from_vector<uint8_t>({2}, {7, 9}), Tensor(), f32({1}, {2})}, {}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<uint8_t>({4}, {7, 7, 9, 9})));
}

TEST(Resize, CropAndResizeExtrapolates) {
  auto y = run_op("Resize", {f32({2}, {1, 3}), f32({2}, {0.5f, 1.5f}), Tensor(), i64({1}, {3})},
                  {{"mode", std::string("linear")}, {"coordinate_transformation_mode", std::string("tf_crop_and_resize")},
                   {"extrapolation_value", 9.0f}},
                  1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({3}, {2, 3, 9})));
}

TEST(Resize, RejectsScalesAndSizesTogether) {
  auto y = run_op("Resize", {f32({2}, {1, 2}), Tensor(), f32({1}, {2}), i64({1}, {4})}, {}, 1, 13);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("only one"), std::string::npos) << y.status().message();
}

TEST(Resize, RejectsScalesOfWrongLength) {
  auto y = run_op("Resize", {f32({1, 2}, {1, 2}), Tensor(), f32({1}, {2})}, {}, 1, 13);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("scales"), std::string::npos) << y.status().message();
}

TEST(Resize, RejectsUnknownMode) {
  auto y = run_op("Resize", {f32({2}, {1, 2}), Tensor(), f32({1}, {2})}, {{"mode", std::string("area")}}, 1, 13);
  ASSERT_FALSE(y.is_ok());
}

TEST(GridSample, IdentityGridWithAlignedCorners) {
  Tensor grid = f32({1, 2, 2, 2}, {-1, -1, 1, -1, -1, 1, 1, 1});
  auto y = run_op("GridSample", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), grid}, {{"align_corners", int64_t(1)}}, 1, 16);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2, 2}, {1, 2, 3, 4})));
}

TEST(GridSample, OutsidePointsFollowPaddingMode) {
  Tensor x = f32({1, 1, 1, 2}, {5, 7});
  Tensor grid = f32({1, 1, 1, 2}, {3, 0});  // far right of the image
  auto zeros = run_op("GridSample", {x, grid}, {}, 1, 16);
  auto border = run_op("GridSample", {x, grid}, {{"padding_mode", std::string("border")}}, 1, 16);
  ASSERT_TRUE(zeros.is_ok() && border.is_ok());
  EXPECT_TRUE(tensors_near((*zeros)[0], f32({1, 1, 1, 1}, {0})));
  EXPECT_TRUE(tensors_near((*border)[0], f32({1, 1, 1, 1}, {7})));
}

TEST(GridSample, RejectsBadGridShape) {
  auto y = run_op("GridSample", {f32({1, 1, 2, 2}, {}), f32({1, 2, 2, 3}, {})}, {}, 1, 16);
  ASSERT_FALSE(y.is_ok());
}

TEST(RoiAlign, AverageOfConstantImageIsConstant) {
  std::vector<float> img(16, 2.5f);
  auto y = run_op("RoiAlign", {f32({1, 1, 4, 4}, img), f32({1, 4}, {0, 0, 3, 3}), i64({1}, {0})},
                  {{"output_height", int64_t(2)}, {"output_width", int64_t(2)}}, 1, 16);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2, 2}, {2.5f, 2.5f, 2.5f, 2.5f})));
}

TEST(RoiAlign, RejectsBatchIndexOutOfRange) {
  auto y = run_op("RoiAlign", {f32({1, 1, 2, 2}, {}), f32({1, 4}, {0, 0, 1, 1}), i64({1}, {3})}, {}, 1, 16);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("batch index"), std::string::npos) << y.status().message();
}

}  // namespace kiln::testing
