#include <cmath>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor run1(const std::string& op, const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs = {},
            int opset = 17) {
  auto y = run_op(op, in, std::move(attrs), 1, opset);
  EXPECT_TRUE(y.is_ok()) << y.status().message();
  return y.is_ok() ? (*y)[0] : Tensor();
}
}  // namespace

TEST(Elementwise, AddBroadcastsRowVector) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto y = run_op("Add", {a, b});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2, 3}, {11, 22, 33, 14, 25, 36})));
}

TEST(Elementwise, AddRejectsIncompatibleShapes) {
  auto y = run_op("Add", {Tensor::from_vector<float>({2, 3}, {}), Tensor::from_vector<float>({2}, {})});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("broadcast"), std::string::npos) << y.status().message();
}

TEST(Elementwise, AddRejectsMixedTypes) {
  auto y = run_op("Add", {Tensor::from_vector<float>({2}, {}), Tensor::from_vector<int32_t>({2}, {})});
  EXPECT_FALSE(y.is_ok());
}

TEST(Elementwise, LegacyBroadcastAlignsAtAxis) {
  // Opset 6: B [2] aligned with A's axis 0 of [2, 3] (numpy would align it with axis 1).
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({2}, {10, 20});
  EXPECT_TRUE(tensors_near(run1("Add", {a, b}, {{"broadcast", int64_t(1)}, {"axis", int64_t(0)}}, 6),
                           Tensor::from_vector<float>({2, 3}, {11, 12, 13, 24, 25, 26})));
}

TEST(Elementwise, IntegerDivisionByZeroDoesNotTrap) {
  auto y = run_op("Div", {Tensor::from_vector<int32_t>({2}, {7, 8}), Tensor::from_vector<int32_t>({2}, {2, 0})});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].data<int32_t>()[0], 3);
  EXPECT_EQ((*y)[0].data<int32_t>()[1], 0);
}

TEST(Elementwise, IntegerModFollowsDivisorSign) {
  Tensor a = Tensor::from_vector<int32_t>({4}, {-4, 7, 5, INT32_MIN});
  Tensor b = Tensor::from_vector<int32_t>({4}, {3, -3, 0, -1});
  EXPECT_TRUE(tensors_near(run1("Mod", {a, b}), Tensor::from_vector<int32_t>({4}, {2, -2, 0, 0})));
  EXPECT_TRUE(tensors_near(run1("Mod", {a, b}, {{"fmod", int64_t(1)}}), Tensor::from_vector<int32_t>({4}, {-1, 1, 0, 0})));
}

TEST(Elementwise, FloatModWithoutFmodFollowsDivisorSign) {
  // numpy.mod (the ONNX reference for fmod=0): the result, a zero one included, takes b's sign.
  Tensor a = Tensor::from_vector<float>({4}, {-4.5f, 4.5f, 4.0f, -3.0f});
  Tensor b = Tensor::from_vector<float>({4}, {2.0f, -2.0f, -2.0f, INFINITY});
  Tensor y = run1("Mod", {a, b});
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({4}, {1.5f, -1.5f, 0.0f, INFINITY})));
  EXPECT_TRUE(std::signbit(y.data<float>()[2]));
}

TEST(Elementwise, BitShiftSignedIsArithmeticAndWraps) {
  Tensor a = Tensor::from_vector<int8_t>({4}, {-8, 64, -1, 5});
  Tensor b = Tensor::from_vector<int8_t>({4}, {1, 1, 9, -1});
  EXPECT_TRUE(tensors_near(run1("BitShift", {a, b}, {{"direction", std::string("RIGHT")}}),
                           Tensor::from_vector<int8_t>({4}, {-4, 32, -1, 0})));
  EXPECT_TRUE(tensors_near(run1("BitShift", {a, b}, {{"direction", std::string("LEFT")}}),
                           Tensor::from_vector<int8_t>({4}, {-16, -128, 0, 0})));
}

TEST(Elementwise, BitCastKeepsBits) {
  Tensor a = Tensor::from_vector<float>({2}, {1.0f, -2.0f});
  Tensor y = run1("BitCast", {a}, {{"to", int64_t(6)}}, 24);  // to int32
  ASSERT_EQ(y.dtype(), DataType::kInt32);
  EXPECT_EQ(y.data<int32_t>()[0], 0x3f800000);
  EXPECT_EQ(uint32_t(y.data<int32_t>()[1]), 0xc0000000u);
  EXPECT_FALSE(run_op("BitCast", {a}, {{"to", int64_t(11)}}, 1, 24).is_ok());  // to double: width differs
}

TEST(Elementwise, PowMixedTypesKeepsBaseType) {
  Tensor a = Tensor::from_vector<int32_t>({3}, {1, 2, 3});
  Tensor b = Tensor::from_vector<float>({3}, {4, 5, 0.5f});
  EXPECT_TRUE(tensors_near(run1("Pow", {a, b}), Tensor::from_vector<int32_t>({3}, {1, 32, 1})));
  Tensor f = Tensor::from_vector<float>({2}, {2, 4});
  Tensor e = Tensor::from_vector<int64_t>({1}, {3});
  EXPECT_TRUE(tensors_near(run1("Pow", {f, e}), Tensor::from_vector<float>({2}, {8, 64})));
}

TEST(Elementwise, BitShiftWideShiftGivesZero) {
  Tensor a = Tensor::from_vector<uint8_t>({3}, {1, 16, 255});
  Tensor b = Tensor::from_vector<uint8_t>({3}, {3, 2, 9});
  EXPECT_TRUE(tensors_near(run1("BitShift", {a, b}, {{"direction", std::string("LEFT")}}),
                           Tensor::from_vector<uint8_t>({3}, {8, 64, 0})));
  EXPECT_TRUE(tensors_near(run1("BitShift", {a, b}, {{"direction", std::string("RIGHT")}}),
                           Tensor::from_vector<uint8_t>({3}, {0, 4, 0})));
  EXPECT_FALSE(run_op("BitShift", {a, b}, {{"direction", std::string("UP")}}).is_ok());
}

TEST(Elementwise, ComparisonsGiveBool) {
  Tensor a = Tensor::from_vector<int64_t>({3}, {1, 2, 3});
  Tensor b = Tensor::from_vector<int64_t>({1}, {2});
  EXPECT_TRUE(tensors_near(run1("Less", {a, b}), Tensor::from_vector<bool>({3}, {true, false, false})));
  EXPECT_TRUE(tensors_near(run1("GreaterOrEqual", {a, b}), Tensor::from_vector<bool>({3}, {false, true, true})));
  EXPECT_TRUE(tensors_near(run1("Equal", {a, b}), Tensor::from_vector<bool>({3}, {false, true, false})));
}

TEST(Elementwise, LogicRejectsNonBool) {
  Tensor a = Tensor::from_vector<float>({1}, {1});
  EXPECT_FALSE(run_op("And", {a, a}).is_ok());
  Tensor t = Tensor::from_vector<bool>({2}, {true, false});
  EXPECT_TRUE(tensors_near(run1("Xor", {t, Tensor::from_vector<bool>({1}, {true})}),
                           Tensor::from_vector<bool>({2}, {false, true})));
}

TEST(Elementwise, BitwiseOps) {
  Tensor a = Tensor::from_vector<int8_t>({2}, {12, -1});
  Tensor b = Tensor::from_vector<int8_t>({2}, {10, 3});
  EXPECT_TRUE(tensors_near(run1("BitwiseAnd", {a, b}, {}, 18), Tensor::from_vector<int8_t>({2}, {8, 3})));
  EXPECT_TRUE(tensors_near(run1("BitwiseNot", {a}, {}, 18), Tensor::from_vector<int8_t>({2}, {-13, 0})));
  EXPECT_FALSE(run_op("BitwiseOr", {Tensor::from_vector<float>({1}, {1}), Tensor::from_vector<float>({1}, {1})}, {}, 1, 18).is_ok());
}

TEST(Elementwise, RoundHalfToEvenAndSign) {
  Tensor x = Tensor::from_vector<float>({5}, {0.5f, 1.5f, 2.5f, -0.5f, -2.6f});
  EXPECT_TRUE(tensors_near(run1("Round", {x}), Tensor::from_vector<float>({5}, {0, 2, 2, -0.f, -3})));
  EXPECT_TRUE(tensors_near(run1("Sign", {x}), Tensor::from_vector<float>({5}, {1, 1, 1, -1, -1})));
}

TEST(Elementwise, IsInfDirections) {
  Tensor x = Tensor::from_vector<float>({3}, {INFINITY, -INFINITY, NAN});
  EXPECT_TRUE(tensors_near(run1("IsInf", {x}, {{"detect_negative", int64_t(0)}}), Tensor::from_vector<bool>({3}, {true, false, false})));
  EXPECT_TRUE(tensors_near(run1("IsNaN", {x}), Tensor::from_vector<bool>({3}, {false, false, true})));
}

TEST(Elementwise, VariadicBroadcastsThreeInputs) {
  Tensor a = Tensor::from_vector<float>({2, 1}, {1, 2});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  Tensor c = Tensor::from_vector<float>({}, {100});
  EXPECT_TRUE(tensors_near(run1("Sum", {a, b, c}), Tensor::from_vector<float>({2, 3}, {111, 121, 131, 112, 122, 132})));
  EXPECT_TRUE(tensors_near(run1("Mean", {a, b, c}), Tensor::from_vector<float>({2, 3}, {37, 121 / 3.f, 131 / 3.f, 112 / 3.f, 122 / 3.f, 44})));
  EXPECT_TRUE(tensors_near(run1("Max", {a}), a));
  Tensor i = Tensor::from_vector<uint64_t>({2}, {UINT64_MAX, 3});
  Tensor j = Tensor::from_vector<uint64_t>({2}, {1, 4});
  EXPECT_TRUE(tensors_near(run1("Min", {i, j}), Tensor::from_vector<uint64_t>({2}, {1, 3})));
}

TEST(Elementwise, WhereBroadcasts) {
  Tensor c = Tensor::from_vector<bool>({2, 1}, {true, false});
  Tensor a = Tensor::from_vector<int64_t>({2}, {1, 2});
  Tensor b = Tensor::from_vector<int64_t>({}, {9});
  EXPECT_TRUE(tensors_near(run1("Where", {c, a, b}), Tensor::from_vector<int64_t>({2, 2}, {1, 2, 9, 9})));
}

TEST(Elementwise, CastSaturatesAndHandlesBool) {
  Tensor x = Tensor::from_vector<float>({4}, {300.f, -1e10f, NAN, 0.f});
  EXPECT_TRUE(tensors_near(run1("Cast", {x}, {{"to", int64_t(DataType::kUInt8)}}), Tensor::from_vector<uint8_t>({4}, {255, 0, 0, 0})));
  EXPECT_TRUE(tensors_near(run1("Cast", {x}, {{"to", int64_t(DataType::kBool)}}), Tensor::from_vector<bool>({4}, {true, true, true, false})));
  Tensor h = run1("Cast", {Tensor::from_vector<double>({1}, {0.1})}, {{"to", int64_t(DataType::kFloat16)}});
  EXPECT_EQ(h.dtype(), DataType::kFloat16);
  EXPECT_NEAR(h.get_as_double(0), 0.1, 1e-4);
  Tensor like = run1("CastLike", {Tensor::from_vector<int32_t>({1}, {7}), Tensor::from_vector<double>({1}, {0})}, {}, 15);
  EXPECT_TRUE(tensors_near(like, Tensor::from_vector<double>({1}, {7})));
}

TEST(Elementwise, CastToStringIsNotSupported) {
  auto y = run_op("Cast", {Tensor::from_vector<float>({1}, {1})}, {{"to", int64_t(DataType::kString)}});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("not supported"), std::string::npos) << y.status().message();
}

TEST(Elementwise, ClipAttributesBeforeOpset11AndInputsAfter) {
  Tensor x = Tensor::from_vector<float>({3}, {-2, 0.5f, 3});
  EXPECT_TRUE(tensors_near(run1("Clip", {x}, {{"min", -1.f}, {"max", 1.f}}, 6), Tensor::from_vector<float>({3}, {-1, 0.5f, 1})));
  EXPECT_TRUE(tensors_near(run1("Clip", {x, Tensor(), Tensor::scalar<float>(1)}, {}, 13), Tensor::from_vector<float>({3}, {-2, 0.5f, 1})));
  Tensor i = Tensor::from_vector<int8_t>({3}, {-128, 5, 127});
  EXPECT_TRUE(tensors_near(run1("Clip", {i, Tensor::scalar<int8_t>(0)}, {}, 13), Tensor::from_vector<int8_t>({3}, {0, 5, 127})));
  EXPECT_FALSE(run_op("Clip", {x, Tensor::from_vector<float>({2}, {0, 1})}, {}, 1, 13).is_ok());
}

}  // namespace kiln::testing
