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
  n.reshape(n.v("t2"), {n.dim(n.x, 0, "c"), n.dim(n.x, 1, "d"), n.c(ints({-1}, {1}))}, "y");
  n.g.outputs = {n.v("y")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  // Inference already knows the dims from the shape arithmetic (Value::dims_value); the pass makes
  // the targets constants.
  EXPECT_EQ(n.v("y")->shape.to_string(), Shape({Dim::symbol("batch"), Dim(6), Dim(8)}).to_string());
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

// BERT as exported: the Linear layer's output is reshaped with dims read from the layer's input;
// shape inference carries the batch through MatMul + bias Add (and a broadcasting Add of a
// [1, 6, 8] constant), so the elements are proven equal to the output's dims. An input dim with
// neither a number nor a name proves nothing.
TEST(CanonicalizeReshape, ProvesDimsThroughALinearLayer) {
  Net n;
  Value* u = n.input("u", Shape({Dim::symbol("batch"), Dim(6), Dim(8)}));
  Value* w = n.input("w", Shape({Dim(), Dim(6), Dim(8)}));
  n.add("MatMul", {u, n.c(random_tensor({8, 8}, 3))}, "mm");
  n.add("Add", {n.v("mm"), n.c(random_tensor({8}, 4))}, "q");
  n.reshape(n.v("q"), {n.dim(u, 0, "a"), n.dim(u, 1, "b"), n.c(ints({-1}, {1})), n.c(ints({4}, {1}))}, "h");
  n.add("Add", {n.v("mm"), n.c(random_tensor({1, 6, 8}, 5))}, "wide");
  n.reshape(n.v("wide"), {n.dim(u, 0, "c"), n.dim(u, 1, "d"), n.c(ints({-1}, {1}))}, "r1");
  // Must not fire: a dim read at another position; an unnamed unknown dim.
  n.reshape(n.v("q"), {n.dim(u, 1, "e"), n.dim(u, 0, "f"), n.c(ints({-1}, {1}))}, "r2");
  n.add("MatMul", {w, n.c(random_tensor({8, 8}, 7))}, "wm");
  n.reshape(n.v("wm"), {n.dim(w, 0, "g"), n.dim(w, 1, "i"), n.c(ints({-1}, {1}))}, "r3");
  n.g.outputs = {n.v("h"), n.v("r1"), n.v("r2"), n.v("r3")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const std::map<std::string, Tensor> in = {{"x", random_tensor({3, 6, 8}, 1)}, {"z", random_tensor({1, 6, 8}, 2)},
                                            {"u", random_tensor({6, 6, 8}, 6)}, {"w", random_tensor({2, 6, 8}, 8)}};
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(canonicalize_reshape(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["canonicalize_reshape.rewritten"], 2);
  EXPECT_EQ(n.v("h")->shape.to_string(), Shape({Dim::symbol("batch"), Dim(6), Dim(2), Dim(4)}).to_string());
  EXPECT_TRUE(n.v("h")->producer->inputs[1]->initializer != nullptr);
  EXPECT_TRUE(n.v("r1")->producer->inputs[1]->initializer != nullptr);
  EXPECT_TRUE(n.v("r2")->producer->inputs[1]->initializer == nullptr);
  EXPECT_TRUE(n.v("r3")->producer->inputs[1]->initializer == nullptr);
  EXPECT_EQ(run(n.g, in), want);
}

// BERT's embeddings as transformers 5 exports them: a [1, 128] buffer expanded to the input ids'
// [batch, n] through the exporter's idiom Expand(t, Where(Equal(s, -1 * ConstantOfShape(Shape(s))),
// ConstantOfShape(..), s)) with s = Reshape(Concat(batch, n), [-1]). Inference must carry
// [batch, 128] through it (else every dim downstream is unknown and no attention fuses).
TEST(CanonicalizeReshape, InferenceFollowsTheExportersExpandIdiom) {
  Net n;
  Value* ids = n.input("ids", Shape({Dim::symbol("batch"), Dim(128)}), DataType::kInt64);
  n.add("Concat", {n.dim(ids, 0, "a"), n.dim(ids, 1, "b")}, "cat")->attrs["axis"] = int64_t(0);
  n.add("Reshape", {n.v("cat"), n.c(ints({-1}, {1}))}, "s");
  n.add("Shape", {n.v("s")}, "ss");
  n.add("ConstantOfShape", {n.v("ss")}, "ones")->attrs["value"] = ints({1}, {1});
  n.add("Mul", {n.v("ones"), n.c(ints({-1}, {}))}, "neg");
  n.add("Equal", {n.v("s"), n.v("neg")}, "eq");
  n.add("Where", {n.v("eq"), n.v("ones"), n.v("s")}, "target");
  n.add("Expand", {n.c(ints(std::vector<int64_t>(128, 0), {1, 128})), n.v("target")}, "tt");
  n.g.outputs = {n.v("tt")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  EXPECT_EQ(n.v("ones")->shape.to_string(), Shape({Dim(2)}).to_string());
  EXPECT_EQ(n.v("tt")->shape.to_string(), Shape({Dim::symbol("batch"), Dim(128)}).to_string());
  // A -1 that may be there (a symbol times -1) proves nothing: the Expand's dims stay unknown.
  Net m;
  Value* q = m.input("q", Shape({Dim::symbol("batch"), Dim(4)}), DataType::kInt64);
  m.add("Mul", {m.dim(q, 0, "a"), m.c(ints({-1}, {1}))}, "minus");
  m.add("Equal", {m.v("minus"), m.c(ints({-1}, {1}))}, "eq");
  m.add("Where", {m.v("eq"), m.c(ints({1}, {1})), m.v("minus")}, "t");
  m.add("Concat", {m.v("t"), m.c(ints({4}, {1}))}, "target")->attrs["axis"] = int64_t(0);
  m.add("Expand", {m.c(ints({0, 0, 0, 0}, {1, 4})), m.v("target")}, "e");
  m.g.outputs = {m.v("e")};
  ASSERT_TRUE(infer_graph(m.g).is_ok());
  EXPECT_FALSE(m.v("e")->shape[0].is_known());
}

}  // namespace
}  // namespace kiln::passes
