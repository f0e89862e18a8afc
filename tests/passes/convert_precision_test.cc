// convert_precision: fires on float32 graphs (I/O keep float32, weights converted once, Casts at
// the boundary), must not fire without a reduced type, keeps ports ONNX fixes to float32, and the
// converted graph computes what the float32 one does, within float16's precision.
#include <gtest/gtest.h>

#include "backends/cpu/executor.h"
#include "ir/op_registry.h"
#include "passes/pipeline.h"

namespace kiln::passes {
namespace {

Node* add_node(Graph& g, const char* op, std::vector<Value*> in, std::vector<Value*> out) {
  auto n = std::make_unique<Node>();
  n->name = std::string(op) + "_" + std::to_string(g.nodes().size());
  n->op_type = op;
  n->opset = 17;
  n->inputs = std::move(in);
  n->outputs = std::move(out);
  return g.add_node(std::move(n));
}

// y = Relu(MatMul(x, w) + b): x [2,3] input, w [3,4], b [4] weights.
std::unique_ptr<Graph> mlp() {
  auto g = std::make_unique<Graph>();
  g->opsets[""] = 17;
  Value* x = *g->add_value("x", DataType::kFloat32, Shape({2, 3}));
  x->is_graph_input = true;
  g->inputs.push_back(x);
  Value* w = *g->add_initializer("w", Tensor::from_vector<float>({3, 4}, {.1f, -.2f, .3f, .4f, .5f, -.6f, .7f, .8f, -.9f, 1.f, 1.1f, -1.2f}));
  Value* b = *g->add_initializer("b", Tensor::from_vector<float>({4}, {.01f, .02f, -.03f, .04f}));
  Value* m = *g->add_value("m");
  Value* s = *g->add_value("s");
  Value* y = *g->add_value("y");
  add_node(*g, "MatMul", {x, w}, {m});
  add_node(*g, "Add", {m, b}, {s});
  add_node(*g, "Relu", {s}, {y});
  g->outputs.push_back(y);
  EXPECT_TRUE(infer_graph(*g).is_ok());
  return g;
}

std::vector<float> run(const Graph& g, const std::vector<float>& x) {
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.is_ok()) << ex.status().message();
  auto out = (*ex)->run({{"x", Tensor::from_vector<float>({2, 3}, x)}});
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  const Tensor& y = (*out)[0];
  EXPECT_EQ(y.dtype(), DataType::kFloat32);
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

TEST(ConvertPrecision, FiresOnFloatGraphsAndKeepsIoTypes) {
  auto g = mlp();
  std::vector<float> x = {0.3f, -1.2f, 2.f, 0.7f, 0.1f, -0.4f};
  auto want = run(*g, x);
  PassContext ctx;
  ctx.reduced_precision = DataType::kFloat16;
  ASSERT_TRUE(convert_precision(*g, ctx).is_ok());
  ASSERT_TRUE(g->verify().is_ok());
  EXPECT_EQ(ctx.counters["convert_precision.nodes"], 3);
  EXPECT_EQ(ctx.counters["convert_precision.casts"], 2);  // x in, y out
  EXPECT_EQ(g->nodes().front()->op_type, "Cast");
  EXPECT_EQ(g->nodes()[1]->inputs[1]->dtype, DataType::kFloat16);  // w converted once
  EXPECT_EQ(g->find_value("x")->dtype, DataType::kFloat32);
  EXPECT_EQ(g->find_value("y")->dtype, DataType::kFloat32);
  auto got = run(*g, x);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-3 * (1 + std::fabs(want[i])));
}

TEST(ConvertPrecision, MustNotFireWithoutAReducedType) {
  auto g = mlp();
  PassContext ctx;
  ASSERT_TRUE(convert_precision(*g, ctx).is_ok());
  EXPECT_EQ(g->nodes().size(), 3u);
  EXPECT_EQ(g->find_value("m")->dtype, DataType::kFloat32);
}

TEST(ConvertPrecision, KeepsQuantizationAndResizeScalesInFloat32) {
  Graph g;
  g.opsets[""] = 17;
  Value* x = *g.add_value("x", DataType::kFloat32, Shape({1, 1, 2, 2}));
  x->is_graph_input = true;
  g.inputs.push_back(x);
  Value* scales = *g.add_initializer("scales", Tensor::from_vector<float>({4}, {1, 1, 2, 2}));
  Value* r = *g.add_value("r");
  auto* resize = add_node(g, "Resize", {x, nullptr, scales}, {r});
  resize->attrs["mode"] = std::string("nearest");
  Value* qs = *g.add_initializer("qs", Tensor::scalar<float>(0.1f));
  Value* q = *g.add_value("q");
  add_node(g, "QuantizeLinear", {r, qs}, {q});
  g.outputs.push_back(q);
  ASSERT_TRUE(infer_graph(g).is_ok());
  PassContext ctx;
  ctx.reduced_precision = DataType::kFloat16;
  ASSERT_TRUE(convert_precision(g, ctx).is_ok()) << "";
  const Node* rz = nullptr;
  const Node* ql = nullptr;
  for (const auto& n : g.nodes()) {
    if (n->op_type == "Resize") rz = n.get();
    if (n->op_type == "QuantizeLinear") ql = n.get();
  }
  ASSERT_TRUE(rz && ql);
  EXPECT_EQ(rz->inputs[0]->dtype, DataType::kFloat16);
  EXPECT_EQ(rz->inputs[2]->dtype, DataType::kFloat32);  // scales stay float32
  EXPECT_EQ(ql->inputs[0]->dtype, DataType::kFloat32);  // a Cast back before QuantizeLinear
  EXPECT_EQ(ql->inputs[1]->dtype, DataType::kFloat32);
}

// BERT's shape: an output (last_hidden_state) that converted nodes also read (the pooler). They
// take the node's reduced copy; the output keeps float32 through one Cast.
TEST(ConvertPrecision, AGraphOutputThatOtherNodesReadIsCastOnce) {
  auto g = mlp();
  Value* y = g->find_value("y");
  Value* z = *g->add_value("z");
  add_node(*g, "Tanh", {y}, {z});
  g->outputs.push_back(z);
  ASSERT_TRUE(infer_graph(*g).is_ok());
  std::vector<float> x = {0.3f, -1.2f, 2.f, 0.7f, 0.1f, -0.4f};
  PassContext ctx;
  ctx.reduced_precision = DataType::kFloat16;
  ASSERT_TRUE(convert_precision(*g, ctx).is_ok()) << "";
  ASSERT_TRUE(g->verify().is_ok());
  EXPECT_EQ(ctx.counters["convert_precision.casts"], 3);  // x in, y and z out
  EXPECT_EQ(g->find_value("y")->dtype, DataType::kFloat32);
  EXPECT_EQ(g->find_value("z")->dtype, DataType::kFloat32);
  EXPECT_EQ(g->find_value("z")->producer->inputs[0]->producer->inputs[0]->dtype, DataType::kFloat16);
  auto ex = cpu::Executor::create(*g);
  ASSERT_TRUE(ex.is_ok()) << ex.status().message();
  auto out = (*ex)->run({{"x", Tensor::from_vector<float>({2, 3}, x)}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  for (int64_t i = 0; i < (*out)[0].numel(); ++i)
    EXPECT_NEAR((*out)[1].data<float>()[i], std::tanh((*out)[0].data<float>()[i]), 2e-3);
}

// ConstantOfShape's output type is its value attribute's (float32 here): the node keeps float32
// and its reader gets a Cast, so the converted graph still infers (Swin's attention mask).
TEST(ConvertPrecision, AnAttributeTypedFloatProducerKeepsFloat32) {
  auto g = mlp();
  Value* s = g->find_value("s");
  Value* shape = *g->add_value("shape");
  Value* ones = *g->add_value("ones");
  Value* z = *g->add_value("z");
  add_node(*g, "Shape", {s}, {shape});
  Node* c = add_node(*g, "ConstantOfShape", {shape}, {ones});
  c->attrs["value"] = Tensor::from_vector<float>({1}, {0.5f});
  add_node(*g, "Add", {g->find_value("y"), ones}, {z});
  g->outputs = {z};
  ASSERT_TRUE(infer_graph(*g).is_ok());
  std::vector<float> x = {0.3f, -1.2f, 2.f, 0.7f, 0.1f, -0.4f};
  auto want = run(*g, x);
  PassContext ctx;
  ctx.reduced_precision = DataType::kFloat16;
  Status st = convert_precision(*g, ctx);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_TRUE(g->verify().is_ok());
  EXPECT_EQ(g->find_value("ones")->dtype, DataType::kFloat32);
  EXPECT_EQ(g->find_value("y")->dtype, DataType::kFloat16);
  auto got = run(*g, x);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-3 * (1 + std::fabs(want[i])));
}

}  // namespace
}  // namespace kiln::passes
