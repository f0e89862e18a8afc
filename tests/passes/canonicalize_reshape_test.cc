// canonicalize_reshape: a Reshape whose target is Concat(Unsqueeze(Gather(Shape(y), k)), consts)
// with y's dims equal to the input's gets a constant target ([0, 0, -1, D]) and known output
// dims, also through a chain where each Reshape's proof needs the previous one's dims; must not
// fire with allowzero = 1, a gathered dim that differs, or a computed element; values unchanged.
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
  Value* x = input("x", Shape({Dim::symbol("batch"), Dim(6), Dim(8)}));
  Value* z = input("z", Shape({Dim::symbol("other"), Dim(6), Dim(8)}));
  // Unsqueeze(Gather(Shape(of), k)).
  Value* dim(Value* of, int64_t k, const std::string& p) {
    add("Shape", {of}, p + "s");
    add("Gather", {v(p + "s"), c(ints({k}, {}))}, p + "g");
    add("Unsqueeze", {v(p + "g"), c(ints({0}, {1}))}, p + "u");
    return v(p + "u");
  }
  Node* reshape(Value* in, std::vector<Value*> parts, const std::string& out) {
    Node* cat = add("Concat", std::move(parts), out + "_shape");
    cat->attrs["axis"] = int64_t(0);
    return add("Reshape", {in, v(out + "_shape")}, out);
  }
};

TEST(CanonicalizeReshape, GivesHeadReshapesConstantTargetsThroughAChain) {
  Net n;
  // x [batch, 6, 8] -> [batch, 6, -1, 4] -> Transpose -> [batch, 2, 6, 4] -> back -> [batch, 6, -1]
  n.reshape(n.x, {n.dim(n.x, 0, "a"), n.dim(n.x, 1, "b"), n.c(ints({-1}, {1})), n.c(ints({4}, {1}))}, "h");
  Node* t = n.add("Transpose", {n.v("h")}, "t");
  t->attrs["perm"] = std::vector<int64_t>{0, 2, 1, 3};
  Node* t2 = n.add("Transpose", {n.v("t")}, "t2");
  t2->attrs["perm"] = std::vector<int64_t>{0, 2, 1, 3};
  n.reshape(n.v("t2"), {n.dim(n.x, 0, "c"), n.dim(n.x, 1, "d"), n.c(ints({-1}, {1}))}, "y");  // needs t2's dims
  n.g.outputs = {n.v("y")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  EXPECT_FALSE(n.v("y")->shape.is_static() || n.v("y")->shape.rank_known() && n.v("y")->shape[2].is_static());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({3, 6, 8}, 1)}, {"z", random_tensor({1, 6, 8}, 2)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(canonicalize_reshape(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["canonicalize_reshape.rewritten"], 2);
  const Shape& ys = n.v("y")->shape;
  ASSERT_TRUE(ys.rank_known());
  EXPECT_EQ(ys.to_string(), Shape({Dim::symbol("batch"), Dim(6), Dim(8)}).to_string());
  for (const auto& node : n.g.nodes()) EXPECT_NE(node->op_type, "Shape");  // the arithmetic is gone
  EXPECT_EQ(run(n.g, in), want);
}

TEST(CanonicalizeReshape, MustNotFireOnAllowzeroAnotherValuesDimOrAComputedElement) {
  Net n;
  Node* r1 = n.reshape(n.x, {n.dim(n.x, 0, "a"), n.dim(n.x, 1, "b"), n.c(ints({-1}, {1}))}, "r1");
  r1->attrs["allowzero"] = int64_t(1);
  n.reshape(n.x, {n.dim(n.z, 0, "c"), n.dim(n.x, 1, "d"), n.c(ints({-1}, {1}))}, "r2");  // z's batch
  n.add("Mul", {n.dim(n.x, 0, "e"), n.c(ints({2}, {1}))}, "twice");
  n.reshape(n.x, {n.v("twice"), n.c(ints({-1}, {1}))}, "r3");  // computed element
  n.g.outputs = {n.v("r1"), n.v("r2"), n.v("r3")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  PassContext ctx;
  ASSERT_TRUE(canonicalize_reshape(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["canonicalize_reshape.rewritten"], 0);
}

// BERT as exported: the Linear layer's output is reshaped with dims read from the layer's input,
// whose batch dim is unknown (lost upstream): equal by construction through MatMul + bias Add.
TEST(CanonicalizeReshape, ProvesDimsThroughALinearLayerWhenTheyAreUnknown) {
  Net n;
  Value* u = *n.g.add_value("u", DataType::kFloat32, Shape({Dim(), Dim(6), Dim(8)}));
  u->is_graph_input = true;
  n.g.inputs.push_back(u);
  n.add("MatMul", {u, n.c(random_tensor({8, 8}, 3))}, "mm");
  n.add("Add", {n.v("mm"), n.c(random_tensor({8}, 4))}, "q");
  n.reshape(n.v("q"), {n.dim(u, 0, "a"), n.dim(u, 1, "b"), n.c(ints({-1}, {1})), n.c(ints({4}, {1}))}, "h");
  // Must not fire: a rank-3 constant may broadcast the leading dims; a dim read at another position.
  n.add("Add", {n.v("mm"), n.c(random_tensor({1, 6, 8}, 5))}, "wide");
  n.reshape(n.v("wide"), {n.dim(u, 0, "c"), n.dim(u, 1, "d"), n.c(ints({-1}, {1}))}, "r1");
  n.reshape(n.v("q"), {n.dim(u, 1, "e"), n.dim(u, 0, "f"), n.c(ints({-1}, {1}))}, "r2");
  n.g.outputs = {n.v("h"), n.v("r1"), n.v("r2")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {
      {"x", random_tensor({3, 6, 8}, 1)}, {"z", random_tensor({1, 6, 8}, 2)}, {"u", random_tensor({6, 6, 8}, 6)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(canonicalize_reshape(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["canonicalize_reshape.rewritten"], 1);
  // [?, 6, ?, 4]: -1 stays unknown next to an unknown batch, but the target is now a constant
  // [0, 0, -1, 4], which is what fuse_attention's head-split proof reads.
  EXPECT_EQ(n.v("h")->shape.to_string(), Shape({Dim(), Dim(6), Dim(), Dim(4)}).to_string());
  EXPECT_TRUE(n.v("h")->producer->inputs[1]->initializer != nullptr);
  EXPECT_EQ(run(n.g, in), want);
}

}  // namespace
}  // namespace kiln::passes
