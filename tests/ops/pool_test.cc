// Op tables for the pool family: window arithmetic (pads, ceil_mode, count_include_pad),
// MaxPool indices in both storage orders, global pools, MaxUnpool, MaxRoiPool.
#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {

Tensor iota(std::vector<int64_t> dims) {
  Tensor t = Tensor::zeros(DataType::kFloat32, dims).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = float(i + 1);
  return t;
}

using Ints = std::vector<int64_t>;

}  // namespace

TEST(MaxPool, IndicesInBothStorageOrders) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 3}, {1, 9, 2, 8, 3, 7});
  auto y = run_op("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}}}, 2);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 1, 2}, {9, 9})));
  EXPECT_TRUE(tensors_near((*y)[1], Tensor::from_vector<int64_t>({1, 1, 1, 2}, {1, 1})));
  auto yc = run_op("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}}, {"storage_order", int64_t(1)}}, 2);
  ASSERT_TRUE(yc.is_ok()) << yc.status().message();
  // Element (0, 1) in column-major order of a 2x3 plane is 1 * 2 + 0 = 2.
  EXPECT_TRUE(tensors_near((*yc)[1], Tensor::from_vector<int64_t>({1, 1, 1, 2}, {2, 2})));
}

TEST(MaxPool, CeilModeDilationsAndInt8) {
  auto y = run_op("MaxPool", {iota({1, 1, 5, 5})}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t(1)}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 3, 3}, {7, 9, 10, 17, 19, 20, 22, 24, 25})));
  auto yd = run_op("MaxPool", {iota({1, 1, 4, 4})}, {{"kernel_shape", Ints{2, 2}}, {"dilations", Ints{2, 2}}});
  ASSERT_TRUE(yd.is_ok()) << yd.status().message();
  EXPECT_TRUE(tensors_near((*yd)[0], Tensor::from_vector<float>({1, 1, 2, 2}, {11, 12, 15, 16})));
  auto yi = run_op("MaxPool", {Tensor::from_vector<int8_t>({1, 1, 3}, {-5, -7, -1})}, {{"kernel_shape", Ints{2}}});
  ASSERT_TRUE(yi.is_ok()) << yi.status().message();
  EXPECT_TRUE(tensors_near((*yi)[0], Tensor::from_vector<int8_t>({1, 1, 2}, {-5, -1})));
}

TEST(AveragePool, CountIncludePad) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3}, {3, 6, 9});
  auto y = run_op("AveragePool", {x}, {{"kernel_shape", Ints{2}}, {"pads", Ints{1, 1}}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 4}, {3, 4.5, 7.5, 9})));
  auto yi = run_op("AveragePool", {x}, {{"kernel_shape", Ints{2}}, {"pads", Ints{1, 1}}, {"count_include_pad", int64_t(1)}});
  ASSERT_TRUE(yi.is_ok()) << yi.status().message();
  EXPECT_TRUE(tensors_near((*yi)[0], Tensor::from_vector<float>({1, 1, 4}, {1.5, 4.5, 7.5, 4.5})));
}

TEST(LpPool, TwoNormOfWindows) {
  auto y = run_op("LpPool", {Tensor::from_vector<float>({1, 1, 3}, {3, 4, 12})}, {{"kernel_shape", Ints{2}}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 2}, {5, std::sqrt(160.0f)})));
}

TEST(GlobalPool, AverageMaxLp) {
  Tensor x = iota({1, 2, 2, 2});
  auto a = run_op("GlobalAveragePool", {x});
  auto m = run_op("GlobalMaxPool", {x});
  auto l = run_op("GlobalLpPool", {Tensor::from_vector<float>({1, 1, 2}, {3, 4})});
  ASSERT_TRUE(a.is_ok() && m.is_ok() && l.is_ok());
  EXPECT_TRUE(tensors_near((*a)[0], Tensor::from_vector<float>({1, 2, 1, 1}, {2.5, 6.5})));
  EXPECT_TRUE(tensors_near((*m)[0], Tensor::from_vector<float>({1, 2, 1, 1}, {4, 8})));
  EXPECT_TRUE(tensors_near((*l)[0], Tensor::from_vector<float>({1, 1, 1}, {5})));
}

TEST(Pool, RejectsBadAttributes) {
  EXPECT_FALSE(run_op("MaxPool", {iota({1, 1, 4, 4})}).is_ok());  // no kernel_shape
  EXPECT_FALSE(run_op("MaxPool", {iota({1, 1, 4, 4})}, {{"kernel_shape", Ints{2}}}).is_ok());
  EXPECT_FALSE(run_op("AveragePool", {iota({1, 1, 4, 4})}, {{"kernel_shape", Ints{2, 2}}, {"pads", Ints{1, 1}}}).is_ok());
  EXPECT_FALSE(run_op("MaxPool", {iota({1, 1, 2, 2})}, {{"kernel_shape", Ints{3, 3}}}).is_ok());
}

TEST(MaxUnpool, ScattersAtIndices) {
  Tensor x = Tensor::from_vector<float>({1, 1, 1, 2}, {5, 6});
  Tensor i = Tensor::from_vector<int64_t>({1, 1, 1, 2}, {2, 3});
  auto y = run_op("MaxUnpool", {x, i}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}, 1, 11);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 2, 4}, {0, 0, 5, 6, 0, 0, 0, 0})));
}

TEST(MaxRoiPool, PoolsBins) {
  Tensor x = iota({1, 1, 4, 4});
  Tensor rois = Tensor::from_vector<float>({1, 5}, {0, 0, 0, 3, 3});
  auto y = run_op("MaxRoiPool", {x, rois}, {{"pooled_shape", Ints{2, 2}}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 2, 2}, {6, 8, 14, 16})));
}

}  // namespace kiln::testing
