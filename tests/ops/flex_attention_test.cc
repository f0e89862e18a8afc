// FlexAttention (ai.onnx.preview): plain attention, grouped-query heads, the score_mod and
// prob_mod subgraphs run on the CPU, and bad inputs named in the error.
#include <cmath>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor f32(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::from_vector<float>(dims, v); }

Expected<std::vector<Tensor>> flex(const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs = {}) {
  return run_op("FlexAttention", in, std::move(attrs), 1, 1, "ai.onnx.preview");
}

// One query [1, 0] over keys [1, 0] and [0, 1] with values 1 and 3.
std::vector<Tensor> tiny_qkv() {
  return {f32({1, 1, 1, 2}, {1, 0}), f32({1, 1, 2, 2}, {1, 0, 0, 1}), f32({1, 1, 2, 1}, {1, 3})};
}

// A modifier subgraph: out = op(in, c) with a float scalar constant c.
std::shared_ptr<Graph> modifier(const std::string& op, float c) {
  auto g = std::make_shared<Graph>();
  g->name = "mod";
  g->opsets[""] = 17;
  Value* in = g->add_value("s", DataType::kFloat32, Shape::unknown_rank()).value();
  in->is_graph_input = true;
  g->inputs.push_back(in);
  Value* k = g->add_initializer("c", Tensor::scalar<float>(c)).value();
  auto n = std::make_unique<Node>();
  n->name = "mod_" + op;
  n->op_type = op;
  n->opset = 17;
  n->inputs = {in, k};
  n->outputs.push_back(g->add_value("s_out").value());
  g->outputs.push_back(n->outputs[0]);
  g->add_node(std::move(n));
  return g;
}
}  // namespace

TEST(FlexAttention, DefaultScaleSoftmaxWeightsValues) {
  auto y = flex(tiny_qkv());
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  const double e = std::exp(1 / std::sqrt(2.0)), p0 = e / (e + 1);
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1}, {float(p0 * 1 + (1 - p0) * 3)})));
}

TEST(FlexAttention, ScaleAttributeAndGroupedQueryHeads) {
  // 2 query heads share one kv head; scale 0 makes the weights uniform.
  std::vector<Tensor> in = {f32({1, 2, 1, 2}, {1, 0, 0, 1}), f32({1, 1, 2, 2}, {1, 0, 0, 1}),
                            f32({1, 1, 2, 1}, {1, 3})};
  auto y = flex(in, {{"scale", 0.0f}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 2, 1, 1}, {2, 2})));
}

TEST(FlexAttention, ScoreModAndProbModRunTheirSubgraphs) {
  // score_mod multiplies the scores by 0: uniform weights; prob_mod doubles them.
  auto y = flex(tiny_qkv(), {{"score_mod", modifier("Mul", 0.0f)}, {"prob_mod", modifier("Mul", 2.0f)}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 1, 1, 1}, {4})));
}

TEST(FlexAttention, BadInputsAreNamed) {
  std::vector<Tensor> in = tiny_qkv();
  in[1] = f32({1, 1, 2, 3}, {1, 0, 0, 0, 1, 0});
  auto y = flex(in);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("FlexAttention_under_test"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("head size"), std::string::npos) << y.status().message();
  in = tiny_qkv();
  in[0] = f32({1, 2}, {1, 0});
  y = flex(in);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("Q must be rank 4"), std::string::npos) << y.status().message();
}

}  // namespace kiln::testing
