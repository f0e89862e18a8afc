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

namespace kiln::testing {

TEST(Resize, AxesAttributeResizesOnlyListedAxes) {
  auto y = run_op("Resize", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), f32({1}, {2})},
                  {{"mode", std::string("nearest")}, {"axes", std::vector<int64_t>{3}}}, 1, 18);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2, 4}, {1, 1, 2, 2, 3, 3, 4, 4})));
}

TEST(Resize, NotLargerKeepsAspectRatio) {
  // sizes [4, 8] for a 2x2 input: scale min(2, 4) = 2 on both axes -> 4x4.
  auto y = run_op("Resize", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), Tensor(), i64({2}, {4, 8})},
                  {{"mode", std::string("nearest")}, {"axes", std::vector<int64_t>{2, 3}},
                   {"keep_aspect_ratio_policy", std::string("not_larger")}},
                  1, 18);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{1, 1, 4, 4}));
}

TEST(Resize, AntialiasLinearDownsampleAveragesWider) {
  // Downsampling [0..3] by 2 with antialias: triangle filter of half-width 2 around 0.5 and 2.5.
  auto y = run_op("Resize", {f32({4}, {0, 1, 2, 3}), Tensor(), f32({1}, {0.5f})},
                  {{"mode", std::string("linear")}, {"antialias", int64_t(1)}}, 1, 18);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // Taps at offsets -1..2 around 0.5: weights 0.25, 0.75, 0.75, 0.25 (edge-clamped index -1 -> 0).
  EXPECT_TRUE(tensors_near((*y)[0], f32({2}, {(0 * 0.25f + 0 * 0.75f + 1 * 0.75f + 2 * 0.25f) / 2,
                                              (1 * 0.25f + 2 * 0.75f + 3 * 0.75f + 3 * 0.25f) / 2})));
}

TEST(Resize, GridSampleVolumetricLinear) {
  // 3-D identity-ish sample at the center of a 2x2x2 cube averages all eight values.
  auto y = run_op("GridSample", {f32({1, 1, 2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}), f32({1, 1, 1, 1, 3}, {0, 0, 0})},
                  {{"mode", std::string("linear")}}, 1, 20);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1, 1}, {3.5f})));
}

TEST(Resize, AffineGridIdentity) {
  auto y = run_op("AffineGrid", {f32({1, 2, 3}, {1, 0, 0, 0, 1, 0}), i64({4}, {1, 1, 1, 2})},
                  {{"align_corners", int64_t(1)}}, 1, 20);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 2, 2}, {-1, -1, 1, -1})));
}

}  // namespace kiln::testing
