// convert_layout: fires on chains of convolutions (plain Conv and kiln.ConvAct, grouped too) and
// the elementwise ops and GlobalAveragePool between them, leaving one Transpose at each end;
// folds the Clip / SiLU before a depthwise convolution into it (input_activation) unless the
// activated value has another reader; must not fire without ctx.channels_last or on
// convolutions with asymmetric pads; the CPU
// executor computes the same values before and after (float32, relative L2 < 1e-5).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/cpu/executor.h"
#include "ir/op_registry.h"
#include "tests/passes/pass_test_util.h"
#include "passes/pipeline.h"

namespace kiln::passes {
namespace {

struct Net : TestNet {
  Value* x = input("x", Shape({2, 4, 6, 7}));
  Value* w(const char* name, std::vector<int64_t> dims, unsigned seed) {
    return *g.add_initializer(name, random_tensor(std::move(dims), seed));
  }
};

// x -> ConvAct(Relu) -> {1x1 Conv, depthwise Conv} -> Add -> Clip -> MaxPool -> Mul(scalar) -> GAP
// with the Mul's output also a graph output (it needs a Transpose back).
void build_chain(Net& n) {
  Node* c1 = n.add("ConvAct", {n.x, n.w("w1", {8, 4, 3, 3}, 1), n.w("b1", {8}, 2)}, "r1", "kiln");
  c1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  c1->attrs["activation"] = std::string("Relu");
  n.add("Conv", {n.v("r1"), n.w("w2", {8, 8, 1, 1}, 3)}, "c2");
  Node* c3 = n.add("Conv", {n.v("r1"), n.w("w3", {8, 1, 3, 3}, 4), n.w("b3", {8}, 5)}, "c3");
  c3->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  c3->attrs["group"] = int64_t(8);
  c3->attrs["strides"] = std::vector<int64_t>{1, 1};
  n.add("Add", {n.v("c2"), n.v("c3")}, "s");
  Value* lo = *n.g.add_initializer("lo", Tensor::scalar<float>(0.f));
  Value* hi = *n.g.add_initializer("hi", Tensor::scalar<float>(0.8f));
  n.add("Clip", {n.v("s"), lo, hi}, "k");
  Node* mp = n.add("MaxPool", {n.v("k")}, "mp");
  mp->attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
  mp->attrs["strides"] = std::vector<int64_t>{2, 2};
  mp->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  n.add("Mul", {n.v("mp"), *n.g.add_initializer("half", Tensor::from_vector<float>({1, 1, 1, 1}, {0.5f}))}, "m");
  n.add("GlobalAveragePool", {n.v("m")}, "gap");
  Node* c4 = n.add("Conv", {n.v("gap"), n.w("w4", {3, 8, 1, 1}, 6), n.w("b4", {3}, 7)}, "y");
  (void)c4;
  n.g.outputs.push_back(n.v("y"));
  n.g.outputs.push_back(n.v("m"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
}

TEST(ConvertLayout, ConvertsConvChainsAndKeepsValues) {
  Net n;
  build_chain(n);
  Tensor x = random_tensor({2, 4, 6, 7}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  ctx.channels_last = true;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok()) << n.g.verify().message();
  EXPECT_EQ(ctx.counters["convert_layout.convolutions"], 4);
  EXPECT_EQ(count(n.g, "Conv"), 0);
  EXPECT_EQ(count(n.g, "ConvAct"), 4);
  for (const auto& node : n.g.nodes())
    if (node->op_type == "ConvAct") EXPECT_EQ(node->attr_string("layout", ""), "NHWC");
  EXPECT_EQ(count(n.g, "GlobalAveragePool"), 0);
  EXPECT_EQ(count(n.g, "ReduceMean"), 1);
  EXPECT_EQ(count(n.g, "MaxPool"), 1);  // kiln.MaxPool
  for (const auto& node : n.g.nodes())
    if (node->op_type == "MaxPool") EXPECT_EQ(node->domain, "kiln");
  // One Transpose in (x) and one back for m; none between the layers. y [2, 3, 1, 1] is one
  // pixel per image: it goes back by a Reshape.
  EXPECT_EQ(count(n.g, "Transpose"), 2);
  EXPECT_EQ(count(n.g, "Reshape"), 1);
  // Types and shapes the pass gave its new values are the ones inference gives.
  for (const auto& node : n.g.nodes())
    for (const Value* v : node->outputs) EXPECT_TRUE(v->shape.is_static()) << v->name;
  std::map<std::string, Shape> before;
  for (const auto& node : n.g.nodes()) for (const Value* v : node->outputs) before[v->name] = v->shape;
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  for (const auto& node : n.g.nodes())
    for (const Value* v : node->outputs) EXPECT_EQ(before[v->name], v->shape) << v->name;
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

// Squeeze-and-excitation: x -> Conv -> c; c * gate with gate [N, C, 1, 1] from outside the
// channels-last chain (as conv_to_matmul's GEMM leaves it): the Mul stays channels-last, the
// gate comes in by a Reshape (no Transpose of the big tensor either way).
TEST(ConvertLayout, GatesOfOnePixelJoinByReshape) {
  Net n;
  Value* gate = *n.g.add_value("gate", DataType::kFloat32, Shape({2, 8, 1, 1}));
  gate->is_graph_input = true;
  n.g.inputs.push_back(gate);
  Node* c1 = n.add("Conv", {n.x, n.w("w1", {8, 4, 3, 3}, 1), n.w("b1", {8}, 2)}, "c");
  c1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  n.add("Mul", {n.v("c"), gate}, "m");
  n.add("Conv", {n.v("m"), n.w("w2", {4, 8, 1, 1}, 3)}, "y");
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({2, 4, 6, 7}, 9)}, {"gate", random_tensor({2, 8, 1, 1}, 8)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ctx.channels_last = true;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok()) << n.g.verify().message();
  EXPECT_EQ(ctx.counters["convert_layout.followed"], 1);  // the Mul
  EXPECT_EQ(count(n.g, "Transpose"), 2);                 // x in, y back
  EXPECT_EQ(count(n.g, "Reshape"), 1);                   // the gate
  auto got = run(n.g, in);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

TEST(ConvertLayout, FoldsClipAndSiluIntoDepthwiseConvolutionsOnly) {
  Net n;
  auto dw = [&](const char* in, const char* w, const char* b, const char* out, unsigned seed) {
    Node* c = n.add("Conv", {n.v(in), n.w(w, {4, 1, 3, 3}, seed), n.w(b, {4}, seed + 1)}, out);
    c->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
    c->attrs["group"] = int64_t(4);
  };
  dw("x", "w1", "b1", "c1", 1);
  Value* lo = *n.g.add_initializer("lo", Tensor::scalar<float>(0.f));
  Value* hi = *n.g.add_initializer("hi", Tensor::scalar<float>(0.5f));
  n.add("Clip", {n.v("c1"), lo, hi}, "k");                       // ReLU6-like: folds
  dw("k", "w2", "b2", "c2", 3);
  n.add("Sigmoid", {n.v("c2")}, "sg");
  n.add("Mul", {n.v("sg"), n.v("c2")}, "s2");                    // SiLU: folds
  n.add("Conv", {n.v("s2"), n.w("w3", {4, 4, 1, 1}, 5), n.w("b3", {4}, 6)}, "c3");
  n.add("Sigmoid", {n.v("c3")}, "sg3");
  n.add("Mul", {n.v("c3"), n.v("sg3")}, "y");                    // after a dense conv: stays
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor x = random_tensor({2, 4, 6, 7}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  ctx.channels_last = true;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok()) << n.g.verify().message();
  EXPECT_EQ(ctx.counters["convert_layout.activations_folded"], 2);
  EXPECT_EQ(count(n.g, "Clip"), 0);
  EXPECT_EQ(count(n.g, "Sigmoid"), 1);
  EXPECT_EQ(count(n.g, "Mul"), 1);
  std::vector<std::string> acts;
  for (const auto& node : n.g.nodes())
    if (node->op_type == "ConvAct") acts.push_back(node->attr_string("activation", ""));
  EXPECT_EQ(acts, (std::vector<std::string>{"Clip", "Silu", ""}));
  EXPECT_EQ(count(n.g, "Transpose"), 2);
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

// x -> 1x1 Conv -> Clip -> depthwise 3x3 -> 1x1 Conv -> SiLU -> depthwise 5x5 stride 2 -> y:
// both activations go into the depthwise convolution after them as input activations.
TEST(ConvertLayout, FoldsActivationsBeforeDepthwiseConvolutions) {
  Net n;
  n.add("Conv", {n.x, n.w("w1", {8, 4, 1, 1}, 1), n.w("b1", {8}, 2)}, "c1");
  Value* lo = *n.g.add_initializer("lo", Tensor::scalar<float>(0.1f));  // Clip(0) != 0: the padding is not activated
  Value* hi = *n.g.add_initializer("hi", Tensor::scalar<float>(0.4f));
  n.add("Clip", {n.v("c1"), lo, hi}, "k");
  Node* d1 = n.add("Conv", {n.v("k"), n.w("w2", {8, 1, 3, 3}, 3), n.w("b2", {8}, 4)}, "c2");
  d1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  d1->attrs["group"] = int64_t(8);
  n.add("Conv", {n.v("c2"), n.w("w3", {8, 8, 1, 1}, 5), n.w("b3", {8}, 6)}, "c3");
  n.add("Sigmoid", {n.v("c3")}, "sg");
  n.add("Mul", {n.v("c3"), n.v("sg")}, "s");
  Node* d2 = n.add("Conv", {n.v("s"), n.w("w4", {8, 1, 5, 5}, 7), n.w("b4", {8}, 8)}, "y");
  d2->attrs["pads"] = std::vector<int64_t>{2, 2, 2, 2};
  d2->attrs["strides"] = std::vector<int64_t>{2, 2};
  d2->attrs["group"] = int64_t(8);
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor x = random_tensor({2, 4, 6, 7}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  ctx.channels_last = true;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok()) << n.g.verify().message();
  EXPECT_EQ(ctx.counters["convert_layout.input_activations_folded"], 2);
  EXPECT_EQ(count(n.g, "Clip"), 0);
  EXPECT_EQ(count(n.g, "Sigmoid"), 0);
  EXPECT_EQ(count(n.g, "Mul"), 0);
  std::vector<std::string> in_acts, layouts;
  for (const auto& node : n.g.nodes())
    if (node->op_type == "ConvAct") {
      in_acts.push_back(node->attr_string("input_activation", ""));
      layouts.push_back(node->attr_string("weight_layout", "MHWC"));
    }
  EXPECT_EQ(in_acts, (std::vector<std::string>{"", "Clip", "", "Silu"}));
  EXPECT_EQ(layouts, (std::vector<std::string>{"MHWC", "HWCM", "MHWC", "HWCM"}));
  EXPECT_EQ(count(n.g, "Transpose"), 2);
  std::map<std::string, Shape> before;
  for (const auto& node : n.g.nodes()) for (const Value* v : node->outputs) before[v->name] = v->shape;
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  for (const auto& node : n.g.nodes())
    for (const Value* v : node->outputs) EXPECT_EQ(before[v->name], v->shape) << v->name;
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

// Must not fire: the Clip's output is also a graph output; the SiLU's Mul output is also read
// by an Add; a Clip before a dense convolution.
TEST(ConvertLayout, KeepsActivationsWithOtherReaders) {
  Net n;
  Value* lo = *n.g.add_initializer("lo", Tensor::scalar<float>(0.f));
  Value* hi = *n.g.add_initializer("hi", Tensor::scalar<float>(0.5f));
  n.add("Clip", {n.x, lo, hi}, "k");
  Node* d1 = n.add("Conv", {n.v("k"), n.w("w1", {4, 1, 3, 3}, 1)}, "c1");
  d1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  d1->attrs["group"] = int64_t(4);
  n.add("Conv", {n.v("c1"), n.w("w2", {4, 4, 1, 1}, 2)}, "c2");
  n.add("Sigmoid", {n.v("c2")}, "sg");
  n.add("Mul", {n.v("sg"), n.v("c2")}, "s");
  Node* d2 = n.add("Conv", {n.v("s"), n.w("w3", {4, 1, 3, 3}, 3)}, "c3");
  d2->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  d2->attrs["group"] = int64_t(4);
  n.add("Add", {n.v("c3"), n.v("s")}, "a");
  n.add("Clip", {n.v("a"), lo, hi}, "k2");
  n.add("Conv", {n.v("k2"), n.w("w4", {4, 4, 1, 1}, 4)}, "y");
  n.g.outputs.push_back(n.v("y"));
  n.g.outputs.push_back(n.v("k"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor x = random_tensor({2, 4, 6, 7}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  ctx.channels_last = true;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok()) << n.g.verify().message();
  EXPECT_EQ(ctx.counters["convert_layout.input_activations_folded"], 0);
  EXPECT_EQ(count(n.g, "Clip"), 2);
  EXPECT_EQ(count(n.g, "Sigmoid"), 1);
  EXPECT_EQ(count(n.g, "Mul"), 1);
  for (const auto& node : n.g.nodes()) EXPECT_EQ(node->attr_string("input_activation", ""), "") << node->name;
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

TEST(ConvertLayout, DoesNothingWithoutTheFlag) {
  Net n;
  build_chain(n);
  const size_t nodes = n.g.nodes().size();
  PassContext ctx;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  EXPECT_EQ(n.g.nodes().size(), nodes);
  EXPECT_EQ(count(n.g, "Transpose"), 0);
  EXPECT_EQ(count(n.g, "Conv"), 3);
}

TEST(ConvertLayout, LeavesAsymmetricPadsAndLoneElementwiseAlone) {
  Net n;
  Node* c = n.add("Conv", {n.x, n.w("w1", {8, 4, 3, 3}, 1)}, "c");
  c->attrs["pads"] = std::vector<int64_t>{0, 0, 1, 1};
  n.add("Relu", {n.v("c")}, "y");
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  PassContext ctx;
  ctx.channels_last = true;
  ASSERT_TRUE(convert_layout(n.g, ctx).is_ok());
  EXPECT_EQ(count(n.g, "Conv"), 1);
  EXPECT_EQ(count(n.g, "Relu"), 1);
  EXPECT_EQ(count(n.g, "Transpose"), 0);
}

}  // namespace
}  // namespace kiln::passes
