#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor f32(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::from_vector<float>(dims, v); }
Tensor zeros(std::vector<int64_t> dims) { return Tensor::zeros(DataType::kFloat32, dims).value(); }
}  // namespace

// With zero weights only the biases drive the cell, so every step has a closed form.
TEST(Rnn, ZeroWeightsGiveTanhOfBias) {
  Tensor x = f32({2, 1, 1}, {5, -5});
  auto y = run_op("RNN", {x, zeros({1, 1, 1}), zeros({1, 1, 1}), f32({1, 2}, {0.25f, 0.25f})},
                  {{"hidden_size", int64_t(1)}}, 2, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  float v = std::tanh(0.5f);
  EXPECT_TRUE(tensors_near((*y)[0], f32({2, 1, 1, 1}, {v, v})));
  EXPECT_TRUE(tensors_near((*y)[1], f32({1, 1, 1}, {v})));
}

TEST(Lstm, ZeroWeightsHalveTheCellState) {
  Tensor x = f32({1, 1, 1}, {3});
  auto y = run_op("LSTM", {x, zeros({1, 4, 1}), zeros({1, 4, 1}), Tensor(), Tensor(), Tensor(), f32({1, 1, 1}, {1})},
                  {{"hidden_size", int64_t(1)}}, 3, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[2], f32({1, 1, 1}, {0.5f})));                     // c = f * c0
  EXPECT_TRUE(tensors_near((*y)[1], f32({1, 1, 1}, {0.5f * std::tanh(0.5f)})));  // h = o * tanh(c)
}

TEST(Gru, ZeroWeightsAverageWithPreviousState) {
  Tensor x = f32({1, 1, 1}, {3});
  auto y = run_op("GRU", {x, zeros({1, 3, 1}), zeros({1, 3, 1}), Tensor(), Tensor(), f32({1, 1, 1}, {0.8f})},
                  {{"hidden_size", int64_t(1)}, {"linear_before_reset", int64_t(1)}}, 2, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[1], f32({1, 1, 1}, {0.4f})));  // (1 - z) * tanh(0) + z * h0, z = 0.5
}

TEST(Rnn, SequenceLensZeroFillsPastTheEnd) {
  Tensor x = f32({2, 2, 1}, {1, 1, 1, 1});
  auto y = run_op("RNN", {x, zeros({1, 1, 1}), zeros({1, 1, 1}), f32({1, 2}, {1, 0}),
                          Tensor::from_vector<int32_t>({2}, {2, 1})},
                  {{"hidden_size", int64_t(1)}}, 1, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  float v = std::tanh(1.0f);
  EXPECT_TRUE(tensors_near((*y)[0], f32({2, 1, 2, 1}, {v, v, v, 0})));
}

TEST(Lstm, BidirectionalBatchwiseShapes) {
  Tensor x = zeros({3, 5, 2});  // layout 1: [batch, seq, input]
  auto y = run_op("LSTM", {x, zeros({2, 16, 2}), zeros({2, 16, 4})},
                  {{"hidden_size", int64_t(4)}, {"direction", std::string("bidirectional")}, {"layout", int64_t(1)}},
                  3, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{3, 5, 2, 4}));
  EXPECT_EQ((*y)[1].dims(), (std::vector<int64_t>{3, 2, 4}));
}

TEST(Lstm, RejectsWrongWeightShape) {
  auto y = run_op("LSTM", {zeros({1, 1, 2}), zeros({1, 12, 2}), zeros({1, 16, 4})}, {{"hidden_size", int64_t(4)}}, 1,
                  14);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("W"), std::string::npos) << y.status().message();
}

TEST(Rnn, RejectsUnknownActivation) {
  auto y = run_op("RNN", {zeros({1, 1, 1}), zeros({1, 1, 1}), zeros({1, 1, 1})},
                  {{"hidden_size", int64_t(1)}, {"activations", std::vector<std::string>{"Gelu"}}}, 1, 14);
  ASSERT_FALSE(y.is_ok());
}

}  // namespace kiln::testing
