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

TEST(QuantizeLinearBadInput, ScaleThatDoesNotFitItsAxisOrBlockNamesNodeAndShapes) {
  Tensor x = Tensor::from_vector<float>({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  auto per_axis = run_op("QuantizeLinear", {x, Tensor::from_vector<float>({3}, {1, 1, 1})}, {{"axis", int64_t(1)}}, 1, 21);
  ASSERT_FALSE(per_axis.is_ok());
  const std::string& m = per_axis.status().message();
  EXPECT_NE(m.find("QuantizeLinear_under_test"), std::string::npos) << m;
  EXPECT_NE(m.find("scale"), std::string::npos) << m;
  // Blocks of 2 along axis 1 need a [2,2] scale; [2,3] does not fit.
  auto blocked = run_op("QuantizeLinear", {x, Tensor::from_vector<float>({2, 3}, {1, 1, 1, 1, 1, 1})},
                        {{"axis", int64_t(1)}, {"block_size", int64_t(2)}}, 1, 21);
  ASSERT_FALSE(blocked.is_ok());
  EXPECT_NE(blocked.status().message().find("scale"), std::string::npos) << blocked.status().message();
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

// Blocked quantization (opset 21): scale has x's shape with ceil(extent / block_size) on axis;
// the last block may be short.
TEST(QuantizeLinear, BlockedWithShortLastBlock) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {2, 4, 6, 8, 10, 12});
  Tensor s = Tensor::from_vector<float>({2, 2}, {1, 2, 2, 4});
  Tensor z = Tensor::from_vector<uint8_t>({2, 2}, {0, 1, 0, 0});
  auto y = run_op("QuantizeLinear", {x, s, z}, {{"axis", int64_t(1)}, {"block_size", int64_t(2)}}, 1, 21);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<uint8_t>({2, 3}, {2, 4, 4, 4, 5, 3})));
  auto d = run_op("DequantizeLinear", {(*y)[0], s, z}, {{"axis", int64_t(1)}, {"block_size", int64_t(2)}}, 1, 21);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  EXPECT_TRUE(tensors_near((*d)[0], x));
  // A scale that does not fit the blocks is one clear error.
  auto bad = run_op("QuantizeLinear", {x, Tensor::from_vector<float>({2, 3}, {1, 1, 1, 1, 1, 1})},
                    {{"axis", int64_t(1)}, {"block_size", int64_t(2)}}, 1, 21);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("block_size"), std::string::npos) << bad.status().message();
}

// int4 output through output_dtype: rounds half to even, clips to [-8, 7], packs two per byte.
TEST(QuantizeLinear, Int4ViaOutputDtypeAndBack) {
  Tensor x = Tensor::from_vector<float>({5}, {-20, -2.5, 0.5, 3.5, 100});
  auto y = run_op("QuantizeLinear", {x, Tensor::scalar<float>(1.0f)},
                  {{"output_dtype", int64_t(DataType::kInt4)}}, 1, 21);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  ASSERT_EQ((*y)[0].dtype(), DataType::kInt4);
  EXPECT_EQ((*y)[0].nbytes(), 3u);
  const double want[] = {-8, -2, 0, 4, 7};
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ((*y)[0].get_as_double(i), want[i]);
  auto d = run_op("DequantizeLinear", {(*y)[0], Tensor::scalar<float>(0.5f)}, {}, 1, 21);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  EXPECT_TRUE(tensors_near((*d)[0], Tensor::from_vector<float>({5}, {-4, -1, 0, 2, 3.5})));
}

// float8 output: x / scale rounded to nearest even, saturating by default, NaN without.
TEST(QuantizeLinear, Float8SaturatesUnlessTold) {
  Tensor x = Tensor::from_vector<float>({3}, {1.0f, 17.0f, 1e6f});
  auto y = run_op("QuantizeLinear", {x, Tensor::scalar<float>(1.0f)},
                  {{"output_dtype", int64_t(DataType::kFloat8E4M3FN)}}, 1, 21);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].get_as_double(0), 1.0);
  EXPECT_EQ((*y)[0].get_as_double(1), 16.0);  // 17 is a tie between 16 and 18: even mantissa
  EXPECT_EQ((*y)[0].get_as_double(2), 448.0);
  auto n = run_op("QuantizeLinear", {x, Tensor::scalar<float>(1.0f)},
                  {{"output_dtype", int64_t(DataType::kFloat8E4M3FN)}, {"saturate", int64_t(0)}}, 1, 21);
  ASSERT_TRUE(n.is_ok()) << n.status().message();
  EXPECT_TRUE(std::isnan((*n)[0].get_as_double(2)));
}

TEST(Cast, ToAndFromPackedAndFloat8Types) {
  Tensor x = Tensor::from_vector<float>({5}, {-9.5f, 7.9f, 8.0f, 0.3f, 1e6f});
  auto i4 = run_op("Cast", {x}, {{"to", int64_t(DataType::kInt4)}}, 1, 21);
  ASSERT_TRUE(i4.is_ok()) << i4.status().message();
  const double wrapped[] = {7, 7, -8, 0, 0};  // truncate, then wrap like numpy's astype
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ((*i4)[0].get_as_double(i), wrapped[i]);
  auto back = run_op("Cast", {(*i4)[0]}, {{"to", int64_t(DataType::kInt8)}}, 1, 21);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ((*back)[0].get_as_double(2), -8);
  auto f8 = run_op("Cast", {x}, {{"to", int64_t(DataType::kFloat8E5M2)}, {"saturate", int64_t(0)}}, 1, 21);
  ASSERT_TRUE(f8.is_ok()) << f8.status().message();
  EXPECT_TRUE(std::isinf((*f8)[0].get_as_double(4)));
  auto f16 = run_op("Cast", {(*f8)[0]}, {{"to", int64_t(DataType::kFloat16)}}, 1, 21);
  ASSERT_TRUE(f16.is_ok()) << f16.status().message();
  EXPECT_EQ((*f16)[0].get_as_double(1), 8.0);  // 7.9 in e5m2
}

// Ops that move elements byte-wise refuse packed tensors instead of misreading them.
TEST(Cast, PackedTypesRejectedByByteWiseOps) {
  auto i4 = run_op("Cast", {Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})}, {{"to", int64_t(DataType::kInt4)}}, 1, 21);
  ASSERT_TRUE(i4.is_ok()) << i4.status().message();
  auto t = run_op("Transpose", {(*i4)[0]}, {}, 1, 21);
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("not supported"), std::string::npos) << t.status().message();
}

}  // namespace kiln::testing

namespace kiln::testing {

// QLinearConcat (com.microsoft): an input with Y's scale and zero point is copied, another is
// requantized (round half to even, saturated); missing scales and mixed types are refused.
TEST(QLinearConcat, CopiesAndRequantizesAlongTheAxis) {
  Tensor a = Tensor::from_vector<int8_t>({2, 1}, {10, -7});
  Tensor b = Tensor::from_vector<int8_t>({2, 2}, {4, 127, -128, 1});
  auto y = run_op("QLinearConcat",
                  {Tensor::scalar<float>(0.5f), Tensor::scalar<int8_t>(1),  // Y: scale 0.5, zero point 1
                   a, Tensor::scalar<float>(0.5f), Tensor::scalar<int8_t>(1),   // same as Y: copied
                   b, Tensor::scalar<float>(0.25f), Tensor::scalar<int8_t>(-2)},  // (b + 2) * 0.25 / 0.5 + 1
                  {{"axis", int64_t(1)}}, 1, 1, "com.microsoft");
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // b: (4+2)/2+1 = 4; (127+2)/2 = 64.5 -> 64 (half to even) + 1 = 65; (-128+2)/2+1 = -62; (1+2)/2 = 1.5 -> 2, + 1 = 3
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int8_t>({2, 3}, {10, 4, 65, -7, -62, 3})));
  auto u = run_op("QLinearConcat",
                  {Tensor::scalar<float>(1.f), Tensor::scalar<uint8_t>(0), Tensor::from_vector<uint8_t>({2}, {3, 250}),
                   Tensor::scalar<float>(2.f), Tensor::scalar<uint8_t>(0)},
                  {{"axis", int64_t(0)}}, 1, 1, "com.microsoft");
  ASSERT_TRUE(u.is_ok()) << u.status().message();
  EXPECT_TRUE(tensors_near((*u)[0], Tensor::from_vector<uint8_t>({2}, {6, 255})));  // 500 saturates
}

TEST(QLinearConcatBadInput, MissingScaleOrMixedTypesIsOneError) {
  Tensor a = Tensor::from_vector<int8_t>({2}, {1, 2});
  auto no_scale = run_op("QLinearConcat",
                         {Tensor::scalar<float>(1.f), Tensor::scalar<int8_t>(0), a, Tensor::scalar<float>(1.f),
                          Tensor::scalar<int8_t>(0), a, Tensor(), Tensor()},
                         {{"axis", int64_t(0)}}, 1, 1, "com.microsoft");
  ASSERT_FALSE(no_scale.is_ok());
  EXPECT_NE(no_scale.status().message().find("its scale"), std::string::npos) << no_scale.status().message();
  auto mixed = run_op("QLinearConcat",
                      {Tensor::scalar<float>(1.f), Tensor::scalar<int8_t>(0), Tensor::from_vector<uint8_t>({2}, {1, 2}),
                       Tensor::scalar<float>(1.f), Tensor::scalar<uint8_t>(0)},
                      {{"axis", int64_t(0)}}, 1, 1, "com.microsoft");
  ASSERT_FALSE(mixed.is_ok());
  EXPECT_NE(mixed.status().message().find("Y_zero_point's type"), std::string::npos) << mixed.status().message();
  auto no_axis = run_op("QLinearConcat",
                        {Tensor::scalar<float>(1.f), Tensor::scalar<int8_t>(0), a, Tensor::scalar<float>(1.f),
                         Tensor::scalar<int8_t>(0)},
                        {}, 1, 1, "com.microsoft");
  EXPECT_FALSE(no_axis.is_ok());
}

}  // namespace kiln::testing
