// fuse_epilogue on convolutions: fires on Conv+Add+Relu, Conv+Relu and Conv+Add; must not fire when the Conv's
// output has a second reader or the Add broadcasts; the fused graph computes the same values.
#include <gtest/gtest.h>

#include <random>

#include "backends/cpu/executor.h"
#include "ir/op_registry.h"
#include "tests/passes/pass_test_util.h"
#include "passes/pipeline.h"

namespace kiln::passes {
namespace {

struct Net : TestNet {
  Value* x = input("x", Shape({1, 2, 5, 5}));
  Node* add(const char* op, std::vector<Value*> in, const std::string& out) {  // a Conv gets pads 1
    Node* n = TestNet::add(op, std::move(in), out);
    if (std::string(op) == "Conv") n->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
    return n;
  }
  Value* w(const char* name, unsigned seed) { return *g.add_initializer(name, random_tensor({2, 2, 3, 3}, seed)); }
};

TEST(FuseEpilogueConv, FoldsResidualAddAndReluAndKeepsValues) {
  Net n;
  Value* b = *n.g.add_initializer("b", random_tensor({2}, 3));
  n.add("Conv", {n.x, n.w("w1", 1), b}, "c1");
  n.add("Relu", {n.v("c1")}, "r1");             // Conv -> Relu
  n.add("Conv", {n.v("r1"), n.w("w2", 2)}, "c2");
  n.add("Add", {n.v("c2"), n.x}, "s");            // Conv -> Add(residual x) -> Relu
  n.add("Relu", {n.v("s")}, "y");
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor x = random_tensor({1, 2, 5, 5}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.conv"], 2);
  EXPECT_EQ(count(n.g, "ConvAct"), 2);
  EXPECT_EQ(n.g.nodes().size(), 2u);
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]);
}

TEST(FuseEpilogueConv, MustNotFireOnASharedOutputOrABroadcastingAdd) {
  Net n;
  n.add("Conv", {n.x, n.w("w1", 1)}, "c1");
  n.add("Relu", {n.v("c1")}, "r1");
  n.add("Neg", {n.v("c1")}, "k");                 // c1 read twice: no fusion
  Value* bias = *n.g.add_initializer("row", random_tensor({5}, 4));
  n.add("Conv", {n.x, n.w("w2", 2)}, "c2");
  n.add("Add", {n.v("c2"), bias}, "s");           // broadcasting Add: no residual fusion
  n.g.outputs = {n.v("r1"), n.v("k"), n.v("s")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.conv"], 0);
  EXPECT_EQ(count(n.g, "Conv"), 2);
}

// Relu written as Clip(x, 0) (torch.clamp(min=0)) folds too; Clip(x, 0, 6) (ReLU6) must not.
TEST(FuseEpilogueConv, FoldsClipAtZeroButNotRelu6) {
  Net n;
  n.add("Conv", {n.x, n.w("w1", 1)}, "k1");
  n.add("Add", {n.v("k1"), n.x}, "s1");
  n.add("Clip", {n.v("s1"), n.c(0.f)}, "y1");          // residual + clamp(min=0): fuses
  n.add("Conv", {n.v("y1"), n.w("w2", 2)}, "k2");
  n.add("Clip", {n.v("k2"), n.c(0.f), n.c(6.f)}, "y2");  // ReLU6: the Clip stays
  n.add("Conv", {n.v("y2"), n.w("w3", 3)}, "k3");
  n.add("Clip", {n.v("k3"), n.c(0.5f)}, "y3");          // another lower bound: the Clip stays
  n.g.outputs.push_back(n.v("y3"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor x = random_tensor({1, 2, 5, 5}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.conv_add_clip0"], 1);
  EXPECT_EQ(ctx.counters["fuse_epilogue.conv"], 1);
  EXPECT_EQ(count(n.g, "Clip"), 2);
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]);
}

// The backend decides which epilogues it takes: with one that refuses a ConvAct with an activation,
// Conv -> Add -> Relu fuses as ConvAct(residual) + Relu, and a Conv -> Relu stays as it is.
TEST(FuseEpilogueConv, AsksTheBackendAndFallsBackToASmallerEpilogue) {
  Net n;
  n.add("Conv", {n.x, n.w("w1", 1)}, "c1");
  n.add("Relu", {n.v("c1")}, "r1");
  n.add("Conv", {n.v("r1"), n.w("w2", 2)}, "c2");
  n.add("Add", {n.v("c2"), n.x}, "s");
  n.add("Relu", {n.v("s")}, "y");
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor x = random_tensor({1, 2, 5, 5}, 9);
  auto want = run(n.g, x);
  PassContext ctx;
  std::vector<std::string> asked;
  ctx.supports = [&](const Node& node, std::string* why) {
    asked.push_back(node.domain + "." + node.op_type + ":" + node.attr_string("activation", "") + ":" +
                    std::to_string(node.inputs.size()));
    if (node.attr_string("activation", "").empty()) return true;
    if (why) *why = "no activation epilogue";
    return false;
  };
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.conv_add"], 1);
  EXPECT_EQ(ctx.counters["fuse_epilogue.conv"], 1);
  EXPECT_EQ(count(n.g, "ConvAct"), 1);
  EXPECT_EQ(count(n.g, "Relu"), 2);
  EXPECT_EQ(count(n.g, "Conv"), 1);
  // Asked, in the sweep's order (last node first): the residual with Relu (no), the residual
  // alone (yes), the first Conv with Relu (no); the sweep changed the graph, so one more sweep
  // asks about the first Conv again (no) and the fixpoint is reached.
  EXPECT_EQ(asked, (std::vector<std::string>{"kiln.ConvAct:Relu:4", "kiln.ConvAct::4", "kiln.ConvAct:Relu:3",
                                             "kiln.ConvAct:Relu:3"}));
  auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]);
}

}  // namespace
}  // namespace kiln::passes
