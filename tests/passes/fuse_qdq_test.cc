// fuse_qdq: fires on DQ -> Conv [-> Relu] -> Q (int32 bias DQ or float bias) and on
// DQ -> MatMul -> Q (per-column weights); must not fire on a per-channel activation scale,
// weights that are not constant, a bias scale that is not sx*sw, or a layer output read as
// float too. The fused graph's outputs equal the Q/DQ graph's to within one output quantum.
#include <gtest/gtest.h>

#include <random>

#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "tests/passes/pass_test_util.h"

namespace kiln::passes {
namespace {

template <class T>
Tensor random_ints(std::vector<int64_t> dims, unsigned seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(lo, hi);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<T> v(n);
  for (auto& x : v) x = T(u(rng));
  return Tensor::from_vector<T>(std::move(dims), v);
}

std::vector<float> channel_scales(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.004f, 0.02f);
  std::vector<float> s(n);
  for (auto& x : s) x = u(rng);
  return s;
}

struct Net : TestNet {
  Value* x = input("x", Shape({2, 3, 6, 6}));
  Value* i8(int8_t v) { return c(Tensor::scalar<int8_t>(v)); }
  // Q then DQ of `v` with a per-tensor scale and zero point: what the tools put on activations.
  Value* qdq(Value* v, float scale, int8_t zp, const std::string& out) {
    Value *s = c(scale), *z = i8(zp);
    add("QuantizeLinear", {v, s, z}, out + "_q");
    add("DequantizeLinear", {this->v(out + "_q"), s, z}, out);
    return this->v(out);
  }
  // Constant int8 weights dequantized per channel along `axis`.
  Value* weights(std::vector<int64_t> dims, int64_t axis, unsigned seed, const std::string& out) {
    const int64_t ch = dims[axis];
    Value* wq = c(random_ints<int8_t>(dims, seed, -127, 127));
    Value* s = c(Tensor::from_vector<float>({ch}, channel_scales(ch, seed)));
    Value* z = c(Tensor::from_vector<int8_t>({ch}, std::vector<int8_t>(ch, 0)));
    add("DequantizeLinear", {wq, s, z}, out)->attrs["axis"] = axis;
    return v(out);
  }
  // The int32 bias dequantized with scale sx * sw (per channel), as ONNX Runtime writes it.
  Value* bias(int64_t ch, float sx, unsigned wseed, unsigned seed, const std::string& out, float skew = 1.f) {
    std::vector<float> s = channel_scales(ch, wseed);
    for (auto& x : s) x = sx * x * skew;
    Value* bq = c(random_ints<int32_t>({ch}, seed, -2000, 2000));
    add("DequantizeLinear", {bq, c(Tensor::from_vector<float>({ch}, s)), c(Tensor::from_vector<int32_t>({ch}, std::vector<int32_t>(ch, 0)))},
        out)->attrs["axis"] = int64_t(0);
    return v(out);
  }
  Node* conv(std::vector<Value*> in, const std::string& out) {
    Node* n = add("Conv", std::move(in), out);
    n->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
    return n;
  }
};

void expect_within_quantum(const std::vector<float>& got, const std::vector<float>& want, float quantum) {
  ASSERT_EQ(got.size(), want.size());
  int off = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), quantum * 1.001f) << i;
    off += got[i] != want[i];
  }
  EXPECT_LE(off, int(got.size() / 50)) << "more than 2% of the outputs off by one quantum";
}

TEST(FuseQdq, FoldsConvReluAndMatMulIntoQLinearLayersAndKeepsValues) {
  Net n;
  const float sx = 0.02f, sy = 0.05f, sf = 0.05f, so = 0.1f;
  Value* x = n.qdq(n.x, sx, 0, "xd");
  n.conv({x, n.weights({4, 3, 3, 3}, 0, 1, "w"), n.bias(4, sx, 1, 2, "b")}, "conv");
  n.add("Relu", {n.v("conv")}, "r");
  Value* r = n.qdq(n.v("r"), sy, -20, "rd");  // zy != -128: the Relu matters
  n.add("Flatten", {r}, "f");
  Value* f = n.qdq(n.v("f"), sf, -128, "fd");
  n.add("MatMul", {f, n.weights({4 * 36, 10}, 1, 3, "wm")}, "m");
  Value* y = n.qdq(n.v("m"), so, 5, "y");
  n.g.outputs.push_back(y);
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor in = random_tensor({2, 3, 6, 6}, 9, -2.f, 2.f);
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_qdq(n.g, ctx).is_ok());
  ASSERT_TRUE(eliminate_dead_nodes(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["fuse_qdq.conv_relu"], 1);
  EXPECT_EQ(ctx.counters["fuse_qdq.matmul"], 1);
  EXPECT_EQ(count(n.g, "QLinearConv"), 1);
  EXPECT_EQ(count(n.g, "QLinearMatMul"), 1);
  EXPECT_EQ(count(n.g, "Max"), 1);  // the Relu, in the int8 domain
  EXPECT_EQ(count(n.g, "Conv") + count(n.g, "MatMul") + count(n.g, "Relu"), 0);
  expect_within_quantum(run(n.g, in), want, so);
}

TEST(FuseQdq, MaxPoolAndFlattenRunOnInt8WhenBothSidesShareTheQuantization) {
  Net n;
  Value* x = n.qdq(n.x, 0.03f, -7, "xd");
  n.add("MaxPool", {x}, "p")->attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  Value* p = n.qdq(n.v("p"), 0.03f, -7, "pd");        // same scale and zero point: exact on int8
  n.add("Flatten", {p}, "f");
  n.g.outputs.push_back(n.qdq(n.v("f"), 0.05f, 0, "y"));  // another scale: stays
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor in = random_tensor({2, 3, 6, 6}, 13, -2.f, 2.f);
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_qdq(n.g, ctx).is_ok());
  ASSERT_TRUE(eliminate_dead_nodes(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_qdq.int8_move"], 1);
  for (const auto& node : n.g.nodes())
    if (node->op_type == "MaxPool") EXPECT_EQ(node->inputs[0]->dtype, DataType::kInt8);
  EXPECT_EQ(count(n.g, "Flatten"), 1);
  auto got = run(n.g, in);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
}

TEST(FuseQdq, QuantizesAFloatBias) {
  Net n;
  const float sx = 0.02f;
  Value* x = n.qdq(n.x, sx, 3, "xd");
  n.conv({x, n.weights({4, 3, 3, 3}, 0, 1, "w"), n.c(random_tensor({4}, 5, -0.5f, 0.5f))}, "conv");
  n.g.outputs.push_back(n.qdq(n.v("conv"), 0.05f, 0, "y"));
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  Tensor in = random_tensor({2, 3, 6, 6}, 11, -2.f, 2.f);
  auto want = run(n.g, in);
  PassContext ctx;
  ASSERT_TRUE(fuse_qdq(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_qdq.conv"], 1);
  expect_within_quantum(run(n.g, in), want, 0.05f);
}

TEST(FuseQdq, MustNotFireOnPerChannelActivationsFloatWeightsSkewedBiasOrASharedOutput) {
  Net n;
  const float sx = 0.02f;
  Value* x = n.qdq(n.x, sx, 0, "xd");
  // 1. the activation DQ has a scale per channel
  Value* xq = n.v("xd_q");
  n.add("DequantizeLinear", {xq, n.c(Tensor::from_vector<float>({3}, {0.02f, 0.03f, 0.04f})),
                             n.c(Tensor::from_vector<int8_t>({3}, {0, 0, 0}))}, "xpc")->attrs["axis"] = int64_t(1);
  n.conv({n.v("xpc"), n.weights({4, 3, 3, 3}, 0, 1, "w1")}, "conv1");
  n.qdq(n.v("conv1"), 0.05f, 0, "y1");
  // 2. float weights (no DQ)
  n.conv({x, n.c(random_tensor({4, 3, 3, 3}, 6))}, "conv2");
  n.qdq(n.v("conv2"), 0.05f, 0, "y2");
  // 3. a bias DQ whose scale is not sx * sw
  n.conv({x, n.weights({4, 3, 3, 3}, 0, 2, "w3"), n.bias(4, sx, 2, 3, "b3", 1.5f)}, "conv3");
  n.qdq(n.v("conv3"), 0.05f, 0, "y3");
  // 4. the conv output is also read as float
  n.conv({x, n.weights({4, 3, 3, 3}, 0, 4, "w4")}, "conv4");
  n.qdq(n.v("conv4"), 0.05f, 0, "y4");
  n.add("Neg", {n.v("conv4")}, "k4");
  n.g.outputs = {n.v("y1"), n.v("y2"), n.v("y3"), n.v("y4"), n.v("k4")};
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  PassContext ctx;
  ASSERT_TRUE(fuse_qdq(n.g, ctx).is_ok());
  EXPECT_EQ(ctx.counters["fuse_qdq.fused"], 0);
  EXPECT_EQ(count(n.g, "QLinearConv"), 0);
}

}  // namespace
}  // namespace kiln::passes
