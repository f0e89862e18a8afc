// Shape-tensor values through inference (Value::dims_value): the exporters' Shape -> Gather /
// Slice -> Unsqueeze -> Concat / Mul / Div arithmetic on a symbolic batch gives a Reshape known
// output dims ("batch", "2*batch"); Dim arithmetic is exact or unknown.
#include <gtest/gtest.h>

#include <limits>

#include "ir/op_registry.h"
#include "tests/passes/pass_test_util.h"

namespace kiln {
namespace {

using passes::TestNet;
using passes::ints;

TEST(DimArithmetic, ExactOrUnknown) {
  const Dim b = Dim::symbol("batch");
  EXPECT_EQ(b * Dim(12), Dim::symbol("batch", 12));
  EXPECT_EQ((b * Dim(12)).to_string(), "12*batch");
  EXPECT_EQ(b * Dim(0), Dim(0));
  EXPECT_FALSE((b * b).is_known());
  EXPECT_EQ(exact_div(Dim::symbol("batch", 12), Dim(4)), Dim::symbol("batch", 3));
  EXPECT_EQ(exact_div(Dim::symbol("batch", 12), Dim::symbol("batch", 4)), Dim(3));
  EXPECT_FALSE(exact_div(Dim::symbol("batch", 3), Dim(2)).is_known());
  EXPECT_FALSE(exact_div(b, Dim::symbol("seq")).is_known());
  EXPECT_FALSE((b + Dim(1)).is_known());
  EXPECT_EQ(Dim(7) - Dim(9), Dim::integer(-2));
  EXPECT_FALSE((Dim(std::numeric_limits<int64_t>::max()) * Dim(2)).is_known());
  EXPECT_FALSE(Dim::unknown().is_known());
  EXPECT_NE(Dim::symbol("batch", 2), b);
}

struct Net : TestNet {
  Value* x = input("x", Shape({Dim::symbol("batch"), Dim(16), Dim(128)}));
  Value* i64(std::vector<int64_t> v) { return c(ints(v, {int64_t(v.size())})); }
  Value* scalar_i64(int64_t v) { return c(ints({v}, {})); }
  // Unsqueeze(Gather(Shape(x), k)): dim k of x as a 1-element tensor.
  Value* dim(int64_t k, const std::string& p) {
    add("Shape", {x}, p + "s");
    add("Gather", {v(p + "s"), scalar_i64(k)}, p + "g");
    add("Unsqueeze", {v(p + "g"), i64({0})}, p + "u");
    return v(p + "u");
  }
  Node* concat(std::vector<Value*> in, const std::string& out) {
    Node* n = add("Concat", std::move(in), out);
    n->attrs["axis"] = int64_t(0);
    return n;
  }
};

TEST(ShapeValue, ReshapeOfTheInputsOwnDims) {
  Net n;
  // x.view(x.shape[0], x.shape[1], 2, 64) and x.view(x.shape[0] * 2, -1, 64) (batch x heads)
  n.concat({n.dim(0, "a"), n.dim(1, "b"), n.i64({2, 64})}, "t1");
  n.add("Reshape", {n.x, n.v("t1")}, "r1");
  n.add("Mul", {n.v("ag"), n.scalar_i64(2)}, "bh");
  n.add("Unsqueeze", {n.v("bh"), n.i64({0})}, "bhu");
  n.concat({n.v("bhu"), n.i64({-1, 64})}, "t2");
  n.add("Reshape", {n.x, n.v("t2")}, "r2");
  // Shape(x)[0:2] ++ [2, 64] and Div(2*batch, 2) = batch
  n.add("Slice", {n.v("as"), n.i64({0}), n.i64({2})}, "sl");
  n.add("Div", {n.v("bh"), n.scalar_i64(2)}, "half");
  n.concat({n.v("sl"), n.i64({2, 64})}, "t3");
  n.add("Reshape", {n.x, n.v("t3")}, "r3");
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const Dim b = Dim::symbol("batch");
  EXPECT_EQ(n.v("r1")->shape, (Shape{b, 16, 2, 64}));
  EXPECT_EQ(n.v("r2")->shape, (Shape{Dim::symbol("batch", 2), 16, 64}));
  EXPECT_EQ(n.v("r3")->shape, (Shape{b, 16, 2, 64}));
  EXPECT_EQ(*n.v("half")->dims_value, std::vector<Dim>{b});
  EXPECT_EQ(*dims_value_of(n.v("t2")), (std::vector<Dim>{Dim::symbol("batch", 2), Dim::integer(-1), Dim(64)}));
}

TEST(ShapeValue, UnknownElementsGiveUnknownDims) {
  Net n;
  Value* y = n.input("y", Shape({Dim::unknown(), Dim(16)}));
  n.add("Shape", {y}, "ys");
  n.add("Gather", {n.v("ys"), n.scalar_i64(0)}, "yg");
  n.add("Unsqueeze", {n.v("yg"), n.i64({0})}, "yu");
  n.concat({n.v("yu"), n.i64({16, 128})}, "t");
  n.add("Reshape", {n.x, n.v("t")}, "r");
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  EXPECT_EQ(n.v("r")->shape, (Shape{Dim::unknown(), 16, 128}));
  EXPECT_FALSE(n.v("yg")->dims_value.has_value());  // nothing known: none recorded
}

}  // namespace
}  // namespace kiln
