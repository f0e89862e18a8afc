// fuse_attention: fires on the TorchScript exporter's SDPA pattern (head Reshape by a constant
// shape and by Shape/Gather/Concat arithmetic, Q/K scale Muls, additive mask, NaN-cleaning Where)
// and the CPU computes the same values after; must not fire without --fp16/--bf16, or when an
// intermediate (the probabilities) is also read elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "backends/cpu/executor.h"
#include "ir/op_registry.h"
#include "tests/passes/pass_test_util.h"
#include "passes/pipeline.h"

namespace kiln::passes {
namespace {

constexpr int64_t B = 2, S = 8, H = 2, D = 8;

struct Net : TestNet {
  Value* x = input("x", Shape({Dim::symbol("batch"), Dim(S), Dim(H * D)}));
  Value* mask = input("mask", Shape({Dim::symbol("batch"), Dim(1), Dim(1), Dim(S)}));
  // [B, S, H*D] -> [B, S, H, D] -> Transpose(perm); the shape from Shape/Gather/Concat or a constant.
  Value* heads(const std::string& p, Value* in, std::vector<int64_t> perm, bool arithmetic) {
    Value* shape;
    if (arithmetic) {
      add("Shape", {x}, p + "sh");
      add("Gather", {v(p + "sh"), c(ints({0}, {}))}, p + "g0");
      add("Gather", {v(p + "sh"), c(ints({1}, {}))}, p + "g1");
      add("Unsqueeze", {v(p + "g0"), c(ints({0}, {1}))}, p + "u0");
      add("Unsqueeze", {v(p + "g1"), c(ints({0}, {1}))}, p + "u1");
      Node* cat = add("Concat", {v(p + "u0"), v(p + "u1"), c(ints({-1}, {1})), c(ints({D}, {1}))}, p + "shape");
      cat->attrs["axis"] = int64_t(0);
      shape = v(p + "shape");
    } else {
      shape = c(ints({0, 0, H, D}, {4}));
    }
    add("Reshape", {in, shape}, p + "4");
    Node* t = add("Transpose", {v(p + "4")}, p + "t");
    t->attrs["perm"] = perm;
    return v(p + "t");
  }
  // The whole block; returns the output name.
  void attention(bool arithmetic, bool probs_output = false) {
    for (const char* n : {"q", "k", "v"}) add("MatMul", {x, c(random_tensor({H * D, H * D}, n[0]))}, std::string(n) + "3");
    Value* qt = heads("q", v("q3"), {0, 2, 1, 3}, arithmetic);
    Value* kt = heads("k", v("k3"), {0, 2, 3, 1}, arithmetic);
    Value* vt = heads("v", v("v3"), {0, 2, 1, 3}, arithmetic);
    const float sc = std::sqrt(1.f / std::sqrt(float(D)));
    add("Mul", {qt, c(sc)}, "qs");
    add("Mul", {kt, c(sc)}, "ks");
    add("MatMul", {v("qs"), v("ks")}, "s");
    add("Add", {v("s"), mask}, "sm_in");
    Node* sm = add("Softmax", {v("sm_in")}, "p");
    sm->attrs["axis"] = int64_t(-1);
    add("IsNaN", {v("p")}, "nan");
    add("Where", {v("nan"), c(0.f), v("p")}, "p2");
    add("MatMul", {v("p2"), vt}, "o");
    Node* t = add("Transpose", {v("o")}, "ot");
    t->attrs["perm"] = std::vector<int64_t>{0, 2, 1, 3};
    if (arithmetic) {  // transformers' reshape(*input_shape, -1)
      Node* cat = add("Concat", {v("qu0"), v("qu1"), c(ints({-1}, {1}))}, "yshape");
      cat->attrs["axis"] = int64_t(0);
      add("Reshape", {v("ot"), v("yshape")}, "y");
    } else {
      add("Reshape", {v("ot"), c(ints({0, 0, H * D}, {3}))}, "y");
    }
    g.outputs = {v("y")};
    if (probs_output) g.outputs.push_back(v("p"));
  }
};

std::map<std::string, Tensor> inputs() {
  Tensor m = random_tensor({B, 1, 1, S}, 4, -3.f, 0.f);
  m.mutable_data<float>()[S - 1] = -1e4f;  // a masked key
  return {{"x", random_tensor({B, S, H * D}, 3)}, {"mask", std::move(m)}};
}

class FuseAttention : public ::testing::TestWithParam<bool> {};

TEST_P(FuseAttention, FiresOnTheExportedPatternAndKeepsValues) {
  Net n;
  n.attention(GetParam());
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  auto in = inputs();
  auto want = run(n.g, in);
  PassContext ctx;
  ctx.reduced_precision = DataType::kFloat16;
  ASSERT_TRUE(fuse_attention(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_attention.fused"], 1);
  EXPECT_EQ(count(n.g, "Attention"), 1);
  EXPECT_EQ(count(n.g, "Softmax"), 0);
  EXPECT_EQ(count(n.g, "Transpose"), 0);
  EXPECT_EQ(n.g.outputs[0]->producer->op_type, "Attention");  // the head-merging Reshape went too
  auto got = run(n.g, in);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(ShapeByConstantOrArithmetic, FuseAttention, ::testing::Bool());

TEST(FuseAttentionNot, MustNotFireInFloat32OrOnASharedIntermediate) {
  Net a;
  a.attention(false);
  ASSERT_TRUE(infer_graph(a.g).is_ok());
  PassContext f32;
  ASSERT_TRUE(fuse_attention(a.g, f32).is_ok());
  EXPECT_EQ(f32.counters["fuse_attention.fused"], 0);
  Net b;
  b.attention(true, /*probs_output=*/true);
  ASSERT_TRUE(infer_graph(b.g).is_ok());
  PassContext ctx;
  ctx.reduced_precision = DataType::kFloat16;
  ASSERT_TRUE(fuse_attention(b.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_attention.fused"], 0);
  EXPECT_EQ(count(b.g, "Softmax"), 1);
}

// The dynamo exporter's form: head Reshapes by [-1, S, H, D] with allowzero = 1, and K^T built as
// Reshape(Transpose(Reshape(k4, [-1, S, D]), [0, 2, 1]), [B, H, D, S]) from Shape(k4) slices. With
// the last target's slices in another order ([B, H, S, D]: not a transpose) it must not fire.
void dynamo_attention(Net& n, bool transposed) {
  const int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  auto heads = [&](const std::string& p, Value* in) {
    Node* r = n.add("Reshape", {in, n.c(ints({-1, S, H, D}, {4}))}, p + "4");
    r->attrs["allowzero"] = int64_t(1);
    Node* t = n.add("Transpose", {n.v(p + "4")}, p + "t");
    t->attrs["perm"] = std::vector<int64_t>{0, 2, 1, 3};
    return n.v(p + "t");
  };
  for (const char* name : {"q", "k", "v"})
    n.add("MatMul", {n.x, n.c(random_tensor({H * D, H * D}, name[0]))}, std::string(name) + "3");
  Value *qt = heads("q", n.v("q3")), *k4 = heads("k", n.v("k3")), *vt = heads("v", n.v("v3"));
  n.add("Shape", {k4}, "ksh");
  auto slice = [&](const std::string& out, int64_t a, int64_t b) {
    return n.add("Slice", {n.v("ksh"), n.c(ints({a}, {1})), n.c(ints({b}, {1}))}, out)->outputs[0];
  };
  Value *s_seq = slice("s_seq", -2, -1), *s_head = slice("s_head", -1, kMax), *s_bh = slice("s_bh", kMin, -2);
  Node* c1 = n.add("Concat", {n.c(ints({-1}, {1})), s_seq, s_head}, "kc1");
  c1->attrs["axis"] = int64_t(0);
  n.add("Reshape", {k4, n.v("kc1")}, "k3d");
  Node* t = n.add("Transpose", {n.v("k3d")}, "k3t");
  t->attrs["perm"] = std::vector<int64_t>{0, 2, 1};
  Node* c2 = n.add("Concat", transposed ? std::vector<Value*>{s_bh, s_head, s_seq} : std::vector<Value*>{s_bh, s_seq, s_head}, "kc2");
  c2->attrs["axis"] = int64_t(0);
  n.add("Reshape", {n.v("k3t"), n.v("kc2")}, "kT");
  const float sc = std::sqrt(1.f / std::sqrt(float(D)));
  n.add("Mul", {qt, n.c(sc)}, "qs");
  n.add("Mul", {n.v("kT"), n.c(sc)}, "ks");
  n.add("MatMul", {n.v("qs"), n.v("ks")}, "s");
  n.add("Add", {n.v("s"), n.mask}, "sm_in");
  Node* sm = n.add("Softmax", {n.v("sm_in")}, "p");
  sm->attrs["axis"] = int64_t(-1);
  n.add("MatMul", {n.v("p"), vt}, "o");
  Node* ot = n.add("Transpose", {n.v("o")}, "ot");
  ot->attrs["perm"] = std::vector<int64_t>{0, 2, 1, 3};
  Node* y = n.add("Reshape", {n.v("ot"), n.c(ints({-1, S, H * D}, {3}))}, "y");
  y->attrs["allowzero"] = int64_t(1);
  n.g.outputs = {n.v("y")};
}

TEST(FuseAttentionDynamo, FiresOnTheDynamoExportersFormAndNotOnANonTranspose) {
  for (bool transposed : {true, false}) {
    Net n;
    dynamo_attention(n, transposed);
    ASSERT_TRUE(infer_graph(n.g).is_ok());
    auto in = inputs();
    auto want = run(n.g, in);
    PassContext ctx;
    ctx.reduced_precision = DataType::kFloat16;
    ASSERT_TRUE(fuse_attention(n.g, ctx).is_ok());
    ASSERT_TRUE(n.g.verify().is_ok());
    EXPECT_EQ(ctx.counters["fuse_attention.fused"], transposed ? 1 : 0);
    if (transposed) {
      EXPECT_EQ(count(n.g, "Transpose"), 0);  // k4's, left to dead-node elimination, went too
      EXPECT_EQ(count(n.g, "Shape"), 0);
      EXPECT_EQ(n.g.outputs[0]->producer->op_type, "Attention");
    }
    EXPECT_LT(rel_l2(run(n.g, in), want), 1e-5);
  }
}

}  // namespace
}  // namespace kiln::passes
