// fuse_mha: fires on torchvision's MultiheadAttention (sequence-first in_proj, the [S,B,3,E]
// split by a constant with -1 or by Shape/Slice/Concat arithmetic, per-head Reshapes, Gemm
// out_proj with or without bias; K^T as a Transpose or the dynamo exporter's Reshape chain) and on
// BERT's Attention of three projections of one input; the CPU computes the same values after.
// Must not fire: Q/K Gather indices swapped, another perm, a head Reshape that is no head split, a
// shared intermediate, float32, BERT projections of different inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "tests/passes/pass_test_util.h"

namespace kiln::passes {
namespace {

constexpr int64_t B = 2, S = 5, H = 2, D = 8, E = H * D;

struct Net : TestNet {
  Value* x = input("x", Shape({Dim::symbol("batch"), Dim(S), Dim(E)}));
  Node* tr(Value* in, std::vector<int64_t> perm, const std::string& out) {
    Node* t = add("Transpose", {in}, out);
    t->attrs["perm"] = perm;
    return t;
  }
  Value* i64(std::vector<int64_t> v) { return c(ints(v, {int64_t(v.size())})); }
  Value* scalar_i64(int64_t v) { return c(ints({v}, {})); }
};

struct VitOptions {
  bool arithmetic = false;     // the [S,B,3,E] split's target from Shape/Slice/Concat
  bool dynamo_kt = false;      // K^T as Reshape/Transpose/Reshape
  bool swap_qk = false;        // Gather 1 feeds Q, 0 feeds K
  bool bad_perm = false;       // K^T by perm [1,0,3,2], not [0,1,3,2]
  bool probs_output = false;   // the probabilities are also a graph output
  bool no_out_bias = false;    // the out_proj Gemm without C (the dynamo exporter's)
  bool bad_split = false;      // head Reshapes by [-1, S, D]: the same sizes, not the head split
};

void vit(Net& n, const VitOptions& o) {
  n.tr(n.x, {1, 0, 2}, "xt");
  n.add("MatMul", {n.v("xt"), n.c(random_tensor({E, 3 * E}, 11))}, "proj");
  n.add("Add", {n.c(random_tensor({3 * E}, 12)), n.v("proj")}, "p");
  Value* target;
  if (o.arithmetic) {  // Concat(Shape(p)[0:2], [3, E], Shape(p)[3:])
    n.add("Shape", {n.v("p")}, "psh");
    n.add("Slice", {n.v("psh"), n.i64({0}), n.i64({2})}, "ps1");
    n.add("Slice", {n.v("psh"), n.i64({3}), n.i64({std::numeric_limits<int64_t>::max()})}, "ps2");
    Node* cat = n.add("Concat", {n.v("ps1"), n.i64({3, E}), n.v("ps2")}, "pt");
    cat->attrs["axis"] = int64_t(0);
    target = n.v("pt");
  } else {
    target = n.i64({S, -1, 3, E});
  }
  n.add("Reshape", {n.v("p"), target}, "r2");
  n.add("Unsqueeze", {n.v("r2"), n.i64({0})}, "un");
  n.tr(n.v("un"), {3, 1, 2, 0, 4}, "t5");
  n.add("Squeeze", {n.v("t5"), n.i64({3})}, "sq");
  auto head = [&](const std::string& p, int64_t index) {
    n.add("Gather", {n.v("sq"), n.scalar_i64(index)}, p + "g");
    n.add("Reshape", {n.v(p + "g"), o.bad_split ? n.i64({-1, S, D}) : n.i64({S, -1, D})}, p + "3");
    n.tr(n.v(p + "3"), {1, 0, 2}, p + "t");
    n.add("Reshape", {n.v(p + "t"), n.i64({-1, H, S, D})}, p + "4");
    return n.v(p + "4");
  };
  Value* q4 = head("q", o.swap_qk ? 1 : 0);
  Value* k4 = head("k", o.swap_qk ? 0 : 1);
  Value* v4 = head("v", 2);
  Value* kt;
  if (o.dynamo_kt) {
    n.add("Reshape", {k4, n.i64({-1, S, D})}, "k3d");
    n.tr(n.v("k3d"), {0, 2, 1}, "k3t");
    n.add("Reshape", {n.v("k3t"), n.i64({-1, H, D, S})}, "kT");
    kt = n.v("kT");
  } else {
    kt = n.tr(k4, o.bad_perm ? std::vector<int64_t>{1, 0, 3, 2} : std::vector<int64_t>{0, 1, 3, 2}, "kT")->outputs[0];
  }
  const float sc = std::sqrt(1.f / std::sqrt(float(D)));
  n.add("Mul", {q4, n.c(sc)}, "qs");
  n.add("Mul", {kt, n.c(sc)}, "ks");
  n.add("MatMul", {n.v("qs"), n.v("ks")}, "s");
  Node* sm = n.add("Softmax", {n.v("s")}, "pr");
  sm->attrs["axis"] = int64_t(-1);
  n.add("MatMul", {n.v("pr"), v4}, "o");
  n.tr(n.v("o"), {2, 0, 1, 3}, "ot");
  n.add("Reshape", {n.v("ot"), n.i64({-1, E})}, "o2");
  std::vector<Value*> gemm_in = {n.v("o2"), n.c(random_tensor({E, E}, 13))};
  if (!o.no_out_bias) gemm_in.push_back(n.c(random_tensor({E}, 14)));
  Node* gemm = n.add("Gemm", gemm_in, "lin");
  gemm->attrs["transB"] = int64_t(1);
  n.add("Reshape", {n.v("lin"), n.i64({S, -1, E})}, "o3");
  n.tr(n.v("o3"), {1, 0, 2}, "y");
  n.g.outputs = {n.v("y")};
  if (o.probs_output) n.g.outputs.push_back(n.v("pr"));
}

// Fires or not; on firing, the CPU gives the same values as before.
void check(Net& n, bool reduced, int want_vit, int want_bert, std::map<std::string, Tensor> in) {
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  auto before = run(n.g, in);
  PassContext ctx;
  if (reduced) ctx.reduced_precision = DataType::kFloat16;
  ASSERT_TRUE(fuse_mha(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_mha.vit"], want_vit);
  EXPECT_EQ(ctx.counters["fuse_mha.bert"], want_bert);
  const bool fired = want_vit + want_bert > 0;
  EXPECT_EQ(count(n.g, "PackedAttention"), fired ? 1 : 0);
  if (fired) {
    EXPECT_EQ(count(n.g, "Softmax") + count(n.g, "Attention"), 0);
  }
  auto after = run(n.g, in);
  ASSERT_EQ(after.size(), before.size());
  EXPECT_LT(rel_l2(after, before), 1e-5);
}

std::map<std::string, Tensor> vit_inputs() { return {{"x", random_tensor({B, S, E}, 3)}}; }

TEST(FuseMhaVit, FiresOnBothExportersForms) {
  for (bool arithmetic : {false, true})
    for (bool dynamo_kt : {false, true}) {
      Net n;
      VitOptions o;
      o.arithmetic = arithmetic;
      o.dynamo_kt = o.no_out_bias = dynamo_kt;
      vit(n, o);
      check(n, true, 1, 0, vit_inputs());
      EXPECT_EQ(count(n.g, "Transpose"), 0);
      EXPECT_EQ(count(n.g, "Gemm"), 0);
    }
}

TEST(FuseMhaVit, MustNotFire) {
  VitOptions swap, perm, shared, split;
  swap.swap_qk = true;
  perm.bad_perm = true;
  shared.probs_output = true;
  split.bad_split = true;
  for (const VitOptions& o : {swap, perm, shared, split}) {
    Net n;
    vit(n, o);
    check(n, true, 0, 0, vit_inputs());
  }
  Net f32;
  vit(f32, {});
  check(f32, false, 0, 0, vit_inputs());
}

// BERT after fuse_attention: Attention(Add(MatMul(x, Wq), bq), .., mask).
void bert(Net& n, bool other_input) {
  Value* x2 = *n.g.add_value("x2", DataType::kFloat32, Shape({Dim::symbol("batch"), Dim(S), Dim(E)}));
  x2->is_graph_input = true;
  n.g.inputs.push_back(x2);
  Value* mask = *n.g.add_value("mask", DataType::kFloat32, Shape({Dim::symbol("batch"), Dim(1), Dim(1), Dim(S)}));
  mask->is_graph_input = true;
  n.g.inputs.push_back(mask);
  for (int i = 0; i < 3; ++i) {
    const std::string p = std::string(1, "qkv"[i]);
    n.add("MatMul", {i == 2 && other_input ? x2 : n.x, n.c(random_tensor({E, E}, 20 + i))}, p + "m");
    n.add("Add", {n.v(p + "m"), n.c(random_tensor({E}, 30 + i))}, p);
  }
  Node* a = n.add("Attention", {n.v("q"), n.v("k"), n.v("v"), mask}, "a");
  a->opset = 23;
  a->attrs["q_num_heads"] = H;
  a->attrs["kv_num_heads"] = H;
  a->attrs["scale"] = 0.3f;
  n.g.outputs = {n.v("a")};
}

std::map<std::string, Tensor> bert_inputs() {
  Tensor m = random_tensor({B, 1, 1, S}, 4, -3.f, 0.f);
  m.mutable_data<float>()[S - 1] = -1e4f;
  return {{"x", random_tensor({B, S, E}, 5)}, {"x2", random_tensor({B, S, E}, 6)}, {"mask", std::move(m)}};
}

TEST(FuseMhaBert, PacksTheThreeProjectionsOfOneInput) {
  Net n;
  bert(n, false);
  check(n, true, 0, 1, bert_inputs());
  EXPECT_EQ(count(n.g, "MatMul"), 1);
  Net other;
  bert(other, true);
  check(other, true, 0, 0, bert_inputs());
  Net f32;
  bert(f32, false);
  check(f32, false, 0, 0, bert_inputs());
}

}  // namespace
}  // namespace kiln::passes
