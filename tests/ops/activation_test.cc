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

TEST(Activation, PointwiseValues) {
  Tensor x = Tensor::from_vector<float>({3}, {-2, 0, 3});
  EXPECT_TRUE(tensors_near(run1("Relu", {x}), Tensor::from_vector<float>({3}, {0, 0, 3})));
  EXPECT_TRUE(tensors_near(run1("LeakyRelu", {x}, {{"alpha", 0.1f}}), Tensor::from_vector<float>({3}, {-0.2f, 0, 3})));
  EXPECT_TRUE(tensors_near(run1("HardSwish", {x}), Tensor::from_vector<float>({3}, {-2 * (1 / 6.f), 0, 3})));
  EXPECT_TRUE(tensors_near(run1("ThresholdedRelu", {x}, {{"alpha", 2.f}}), Tensor::from_vector<float>({3}, {0, 0, 3})));
  EXPECT_TRUE(tensors_near(run1("Shrink", {x}, {{"lambd", 1.f}, {"bias", 0.5f}}), Tensor::from_vector<float>({3}, {-1.5f, 0, 2.5f})));
  EXPECT_TRUE(tensors_near(run1("Softsign", {x}), Tensor::from_vector<float>({3}, {-2 / 3.f, 0, 0.75f})));
}

TEST(Activation, ReluOnIntegers) {
  Tensor x = Tensor::from_vector<int8_t>({3}, {-5, 0, 7});
  EXPECT_TRUE(tensors_near(run1("Relu", {x}, {}, 14), Tensor::from_vector<int8_t>({3}, {0, 0, 7})));
}

TEST(Activation, SigmoidAndSoftplusStableForLargeInputs) {
  Tensor x = Tensor::from_vector<float>({2}, {-1000, 1000});
  EXPECT_TRUE(tensors_near(run1("Sigmoid", {x}), Tensor::from_vector<float>({2}, {0, 1})));
  EXPECT_TRUE(tensors_near(run1("Softplus", {x}), Tensor::from_vector<float>({2}, {0, 1000})));
}

TEST(Activation, GeluExactAndTanh) {
  Tensor x = Tensor::from_vector<float>({2}, {-1, 1});
  EXPECT_TRUE(tensors_near(run1("Gelu", {x}, {}, 20), Tensor::from_vector<float>({2}, {-0.15865525f, 0.84134475f})));
  EXPECT_TRUE(tensors_near(run1("Gelu", {x}, {{"approximate", std::string("tanh")}}, 20),
                           Tensor::from_vector<float>({2}, {-0.15880801f, 0.84119199f})));
  EXPECT_FALSE(run_op("Gelu", {x}, {{"approximate", std::string("fast")}}, 1, 20).is_ok());
}

TEST(Activation, PReluBroadcastsSlope) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {-1, 2, -3, 4});
  Tensor s = Tensor::from_vector<float>({2}, {0.5f, 0.25f});
  EXPECT_TRUE(tensors_near(run1("PRelu", {x, s}), Tensor::from_vector<float>({2, 2}, {-0.5f, 2, -1.5f, 4})));
}

TEST(Activation, PReluBeforeOpset7IsPerChannel) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3}, {-1, -1, -1, -2, -2, 2});
  Tensor s = Tensor::from_vector<float>({2}, {0.5f, 0.25f});
  EXPECT_TRUE(tensors_near(run1("PRelu", {x, s}, {}, 6), Tensor::from_vector<float>({1, 2, 3}, {-0.5f, -0.5f, -0.5f, -0.5f, -0.5f, 2})));
}

TEST(Activation, SoftmaxAxisSemanticsDependOnOpset) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {0, 0, 0, std::log(3.f)});
  // Opset 13: along axis 1 independently for each column.
  EXPECT_TRUE(tensors_near(run1("Softmax", {x}, {{"axis", int64_t(1)}}, 13),
                           Tensor::from_vector<float>({1, 2, 2}, {0.5f, 0.25f, 0.5f, 0.75f})));
  // Opset 11: coerced to [1, 4], one softmax over all four values.
  EXPECT_TRUE(tensors_near(run1("Softmax", {x}, {}, 11), Tensor::from_vector<float>({1, 2, 2}, {1 / 6.f, 1 / 6.f, 1 / 6.f, 0.5f})));
  EXPECT_TRUE(tensors_near(run1("LogSoftmax", {x}, {}, 13),
                           Tensor::from_vector<float>({1, 2, 2}, {-std::log(2.f), -std::log(2.f), -std::log(4.f), -std::log(4.f / 3)})));
  EXPECT_FALSE(run_op("Softmax", {x}, {{"axis", int64_t(3)}}, 1, 13).is_ok());
}

TEST(Activation, HardmaxPicksFirstMax) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 3, 3, 0, -1, -2});
  EXPECT_TRUE(tensors_near(run1("Hardmax", {x}), Tensor::from_vector<float>({2, 3}, {0, 1, 0, 1, 0, 0})));
}

}  // namespace kiln::testing
