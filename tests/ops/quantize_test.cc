// Op tables for the quantize family: rounding (half to even), saturation, per-axis scales,
// DynamicQuantizeLinear, and rejected parameter shapes.
#include "tests/ops/op_test.h"

namespace kiln::testing {

TEST(QuantizeLinear, RoundsHalfToEvenAndSaturates) {
  Tensor x = Tensor::from_vector<float>({6}, {0.5f, 1.5f, 2.5f, -3.0f, 1000.0f, 5.0f});
  auto y = run_op("QuantizeLinear", {x, Tensor::scalar<float>(1.0f), Tensor::scalar<uint8_t>(1)});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<uint8_t>({6}, {1, 3, 3, 0, 255, 6})));
  auto yi = run_op("QuantizeLinear", {x, Tensor::scalar<float>(2.0f), Tensor::scalar<int8_t>(-1)});
  ASSERT_TRUE(yi.is_ok()) << yi.status().message();
  EXPECT_TRUE(tensors_near((*yi)[0], Tensor::from_vector<int8_t>({6}, {-1, 0, 0, -3, 127, 1})));
  auto yu = run_op("QuantizeLinear", {x, Tensor::scalar<float>(1.0f)});  // no zero point: uint8
  ASSERT_TRUE(yu.is_ok()) << yu.status().message();
  EXPECT_EQ((*yu)[0].dtype(), DataType::kUInt8);
}

TEST(QuantizeLinear, PerAxis) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {2, 4, 2, 4});
  Tensor s = Tensor::from_vector<float>({2}, {1, 2});
  Tensor z = Tensor::from_vector<uint8_t>({2}, {0, 10});
  auto y = run_op("QuantizeLinear", {x, s, z}, {{"axis", int64_t(1)}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<uint8_t>({1, 2, 2}, {2, 4, 11, 12})));
  EXPECT_FALSE(run_op("QuantizeLinear", {x, Tensor::from_vector<float>({3}, {1, 1, 1})}, {{"axis", int64_t(1)}}).is_ok());
}

TEST(DequantizeLinear, PerTensorPerAxisInt32) {
  auto y = run_op("DequantizeLinear", {Tensor::from_vector<uint8_t>({3}, {0, 128, 255}), Tensor::scalar<float>(0.5f),
                                       Tensor::scalar<uint8_t>(128)});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({3}, {-64, 0, 63.5})));
  auto ya = run_op("DequantizeLinear", {Tensor::from_vector<int8_t>({2, 2}, {1, 2, 3, 4}),
                                        Tensor::from_vector<float>({2}, {1, 10}), Tensor::from_vector<int8_t>({2}, {0, 1})},
                   {{"axis", int64_t(0)}});
  ASSERT_TRUE(ya.is_ok()) << ya.status().message();
  EXPECT_TRUE(tensors_near((*ya)[0], Tensor::from_vector<float>({2, 2}, {1, 2, 20, 30})));
  auto yi = run_op("DequantizeLinear", {Tensor::from_vector<int32_t>({2}, {-4, 6}), Tensor::scalar<float>(0.5f)});
  ASSERT_TRUE(yi.is_ok()) << yi.status().message();
  EXPECT_TRUE(tensors_near((*yi)[0], Tensor::from_vector<float>({2}, {-2, 3})));
}

TEST(DynamicQuantizeLinear, RangeIncludesZero) {
  auto y = run_op("DynamicQuantizeLinear", {Tensor::from_vector<float>({3}, {1, 2, 2.55f})}, {}, 3);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[1], Tensor::scalar<float>(0.01f)));
  EXPECT_TRUE(tensors_near((*y)[2], Tensor::scalar<uint8_t>(0)));
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<uint8_t>({3}, {100, 200, 255})));
  auto z = run_op("DynamicQuantizeLinear", {Tensor::from_vector<float>({2}, {0, 0})}, {}, 3);
  ASSERT_TRUE(z.is_ok()) << z.status().message();  // all-zero input: scale 0 must not divide by zero
  EXPECT_TRUE(tensors_near((*z)[0], Tensor::from_vector<uint8_t>({2}, {0, 0})));
}

}  // namespace kiln::testing
