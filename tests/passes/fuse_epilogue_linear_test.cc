// fuse_epilogue on Linear layers: fires on MatMul+Add(bias) alone, with Relu, with the Gelu op and with the
// exporters' erf GELU (three arrangements of its 0.5); must not fire when the MatMul's output has a second
// reader, the bias is not a constant, or it broadcasts along another axis; the fused graph
// computes the same values on the CPU.
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
  Net() : TestNet(20) {}
  Value* x = input("x", Shape({2, 3, 4}));
  Node* add(const char* op, std::vector<Value*> in, const std::string& out) {  // Gelu is opset 20
    return TestNet::add(op, std::move(in), out, "", std::string(op) == "Gelu" ? 20 : 17);
  }
  Value* w(unsigned seed, std::vector<int64_t> dims = {4, 4}) {
    return *g.add_initializer("w" + std::to_string(seed), random_tensor(std::move(dims), seed));
  }
};

TEST(FuseEpilogueLinear, FoldsBiasReluAndEveryGeluFormAndKeepsValues) {
  Net n;
  n.add("MatMul", {n.x, n.w(1)}, "m1");
  n.add("Add", {n.w(2, {4}), n.v("m1")}, "s1");      // bias first, no activation
  n.add("MatMul", {n.v("s1"), n.w(3)}, "m2");
  n.add("Add", {n.v("m2"), n.w(4, {4})}, "s2");
  n.add("Relu", {n.v("s2")}, "r2");                  // + Relu
  n.add("MatMul", {n.v("r2"), n.w(5)}, "m3");
  n.add("Add", {n.v("m3"), n.w(6, {4})}, "s3");      // + erf GELU, (s * p) * 0.5
  n.add("Div", {n.v("s3"), n.c(std::sqrt(2.f))}, "d3");
  n.add("Erf", {n.v("d3")}, "e3");
  n.add("Add", {n.v("e3"), n.c(1.f)}, "p3");
  n.add("Mul", {n.v("s3"), n.v("p3")}, "q3");
  n.add("Mul", {n.v("q3"), n.c(0.5f)}, "g3");
  n.add("MatMul", {n.v("g3"), n.w(7)}, "m4");
  n.add("Add", {n.v("m4"), n.w(8, {4})}, "s4");      // + erf GELU, (s * 0.5) * p, Mul by 1/sqrt2
  n.add("Mul", {n.c(std::sqrt(0.5f)), n.v("s4")}, "d4");
  n.add("Erf", {n.v("d4")}, "e4");
  n.add("Add", {n.c(1.f), n.v("e4")}, "p4");
  n.add("Mul", {n.v("s4"), n.c(0.5f)}, "q4");
  n.add("Mul", {n.v("p4"), n.v("q4")}, "g4");
  n.add("MatMul", {n.v("g4"), n.w(9)}, "m5");
  n.add("Add", {n.v("m5"), n.w(10, {4})}, "s5");
  n.add("Gelu", {n.v("s5")}, "y5");                  // + Gelu op
  n.add("MatMul", {n.v("y5"), n.w(11)}, "m6");
  n.add("Add", {n.v("m6"), n.w(12, {4})}, "s6");      // + erf GELU, s * (p * 0.5): the dynamo exporter's
  n.add("Div", {n.v("s6"), n.c(std::sqrt(2.f))}, "d6");
  n.add("Erf", {n.v("d6")}, "e6");
  n.add("Add", {n.v("e6"), n.c(1.f)}, "p6");
  n.add("Mul", {n.c(0.5f), n.v("p6")}, "h6");
  n.add("Mul", {n.v("s6"), n.v("h6")}, "g6");
  n.add("MatMul", {n.v("g6"), n.w(13)}, "m7");
  n.add("Add", {n.v("m7"), n.w(14, {4})}, "s7");
  n.add("Add", {n.x, n.v("s7")}, "y");                // + residual
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({2, 3, 4}, 11)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear"], 7);
  EXPECT_EQ(ctx.counters["fuse_epilogue.gelu"], 4);
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear_residual"], 1);
  EXPECT_EQ(count(n.g, "MatMulBias"), 7);
  EXPECT_EQ(n.g.nodes().size(), 7u);
  auto got = run(n.g, in);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-6);
}

TEST(FuseEpilogueLinear, MustNotFireOnASharedOutputAVariableOrBroadcastingBias) {
  Net n;
  Value* bx = *n.g.add_value("bx", DataType::kFloat32, Shape({4}));
  bx->is_graph_input = true;
  n.g.inputs.push_back(bx);
  n.add("MatMul", {n.x, n.w(1)}, "m1");
  n.add("Add", {n.v("m1"), n.w(2, {4})}, "s1");
  n.add("Neg", {n.v("m1")}, "k1");                   // m1 read twice
  n.add("MatMul", {n.x, n.w(3)}, "m2");
  n.add("Add", {n.v("m2"), bx}, "s2");               // bias is not a constant
  n.add("MatMul", {n.x, n.w(4)}, "m3");
  n.add("Add", {n.v("m3"), n.w(5, {3, 1})}, "s3");   // broadcasts along rows
  n.g.outputs = {n.v("s1"), n.v("k1"), n.v("s2"), n.v("s3")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear"], 0);
  EXPECT_EQ(count(n.g, "MatMul"), 3);
}

TEST(FuseEpilogueLinear, NoResidualAfterAnActivationOrThroughABroadcastingAdd) {
  Net n;
  Value* row = *n.g.add_value("row", DataType::kFloat32, Shape({4}));
  row->is_graph_input = true;
  n.g.inputs.push_back(row);
  n.add("MatMul", {n.x, n.w(1)}, "m1");
  n.add("Add", {n.v("m1"), n.w(2, {4})}, "s1");
  n.add("Relu", {n.v("s1")}, "r1");
  n.add("Add", {n.v("r1"), n.x}, "y1");               // residual after Relu: stays an Add
  n.add("MatMul", {n.x, n.w(3)}, "m2");
  n.add("Add", {n.v("m2"), n.w(4, {4})}, "s2");
  n.add("Add", {n.v("s2"), row}, "y2");               // broadcasting: stays an Add
  n.g.outputs = {n.v("y1"), n.v("y2")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({2, 3, 4}, 5)}, {"row", random_tensor({4}, 6)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear"], 2);
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear_residual"], 0);
  EXPECT_EQ(count(n.g, "Add"), 2);
  auto got = run(n.g, in);
  EXPECT_LT(rel_l2(got, want), 1e-6);
}

TEST(FuseEpilogueLinear, LeavesAGeluInputWithAThirdReaderUnfusedButFusesTheBias) {
  Net n;
  n.add("MatMul", {n.x, n.w(1)}, "m");
  n.add("Add", {n.v("m"), n.w(2, {4})}, "s");
  n.add("Div", {n.v("s"), n.c(std::sqrt(2.f))}, "d");
  n.add("Erf", {n.v("d")}, "e");
  n.add("Add", {n.v("e"), n.c(1.f)}, "p");
  n.add("Mul", {n.v("s"), n.v("p")}, "q");
  n.add("Mul", {n.v("q"), n.c(0.5f)}, "y");
  n.g.outputs = {n.v("y"), n.v("s")};                // s is also a graph output
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({2, 3, 4}, 5)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear"], 1);
  EXPECT_EQ(ctx.counters["fuse_epilogue.gelu"], 0);
  EXPECT_EQ(count(n.g, "Erf"), 1);
  auto got = run(n.g, in);
  EXPECT_LT(rel_l2(got, want), 1e-6);
}

// A residual of the MatMul's shape as shape inference knows it ([batch, 3, 4] through the Linear
// layer) folds in; an input of another symbolic batch, or one whose batch has neither a number nor a
// name ([?, 3, 4] proves nothing), may broadcast: not folded.
TEST(FuseEpilogueLinear, ResidualProvenByInferredSymbolicDims) {
  Net n;
  Value* u = *n.g.add_value("u", DataType::kFloat32, Shape({Dim::symbol("batch"), Dim(3), Dim(4)}));
  Value* o = *n.g.add_value("o", DataType::kFloat32, Shape({Dim::symbol("other"), Dim(3), Dim(4)}));
  Value* q = *n.g.add_value("q", DataType::kFloat32, Shape({Dim(), Dim(3), Dim(4)}));
  for (Value* in : {u, o, q}) { in->is_graph_input = true; n.g.inputs.push_back(in); }
  n.add("MatMul", {u, n.w(1)}, "m1");
  n.add("Add", {n.v("m1"), n.w(2, {4})}, "s1");
  n.add("Add", {n.v("s1"), u}, "y1");                // residual: u itself
  n.add("MatMul", {u, n.w(3)}, "m2");
  n.add("Add", {n.v("m2"), n.w(4, {4})}, "s2");
  n.add("Add", {n.v("s2"), o}, "y2");                // o: nothing proves its batch is u's
  n.add("MatMul", {q, n.w(5)}, "m3");
  n.add("Add", {n.v("m3"), n.w(6, {4})}, "s3");
  n.add("Add", {n.v("s3"), q}, "y3");                // q's batch is unknown
  n.g.outputs = {n.v("y1"), n.v("y2"), n.v("y3")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({2, 3, 4}, 7)}, {"u", random_tensor({5, 3, 4}, 8)},
                                            {"o", random_tensor({5, 3, 4}, 9)}, {"q", random_tensor({5, 3, 4}, 10)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear"], 3);
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear_residual"], 1);
  EXPECT_EQ(n.v("y1")->producer->op_type, "MatMulBias");
  EXPECT_EQ(n.v("y2")->producer->op_type, "Add");
  EXPECT_EQ(n.v("y3")->producer->op_type, "Add");
  EXPECT_LT(rel_l2(run(n.g, in), want), 1e-6);
}

// A backend without a GELU epilogue: the bias still folds and the exporter's erf chain stays.
TEST(FuseEpilogueLinear, AsksTheBackendAndKeepsAGeluItCannotFuse) {
  Net n;
  n.add("MatMul", {n.x, n.w(1)}, "m1");
  n.add("Add", {n.v("m1"), n.w(2, {4})}, "s1");
  n.add("Div", {n.v("s1"), n.c(std::sqrt(2.f))}, "d1");
  n.add("Erf", {n.v("d1")}, "e1");
  n.add("Add", {n.v("e1"), n.c(1.f)}, "p1");
  n.add("Mul", {n.v("s1"), n.v("p1")}, "q1");
  n.add("Mul", {n.v("q1"), n.c(0.5f)}, "y");
  n.g.outputs.push_back(n.v("y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({2, 3, 4}, 11)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ctx.supports = [](const Node& node, std::string*) { return node.attr_string("activation", "") != "Gelu"; };
  ASSERT_TRUE(fuse_epilogue(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_epilogue.linear_bias"], 1);
  EXPECT_EQ(ctx.counters["fuse_epilogue.gelu"], 0);
  EXPECT_EQ(count(n.g, "MatMulBias"), 1);
  EXPECT_EQ(count(n.g, "Erf"), 1);
  auto got = run(n.g, in);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-6);
}

}  // namespace
}  // namespace kiln::passes
