// conv_to_matmul: a patchify convolution (kernel == stride, no padding) becomes Reshape ->
// Transpose -> Reshape -> MatMul -> Add -> Transpose with the same values, for a dynamic batch;
// a 1x1 convolution of one pixel becomes Reshape -> MatMul -> Add -> Reshape; must not fire with
// padding, overlapping windows, a 1x1 kernel over many pixels, groups, or H not a multiple of p.
#include <gtest/gtest.h>

#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "tests/passes/pass_test_util.h"

namespace kiln::passes {
namespace {

struct Net : TestNet {
  Value* x;
  explicit Net(Shape xs) : x(input("x", std::move(xs))) {}
  // Conv with a [6, 3/group, kh, kw] weight and a bias, then Relu (so the Conv's output is not a graph output).
  void conv(std::vector<int64_t> k, std::vector<int64_t> strides, std::vector<int64_t> pads, int64_t group = 1) {
    Value* w = *g.add_initializer("w", random_tensor({6, 3 / group, k[0], k[1]}, 1));
    Value* b = *g.add_initializer("b", random_tensor({6}, 2));
    Node* n = add("Conv", {x, w, b}, "c");
    n->attrs["strides"] = strides;
    n->attrs["pads"] = pads;
    if (group != 1) n->attrs["group"] = group;
    add("Relu", {v("c")}, "y");
    g.outputs.push_back(v("y"));
  }
};

TEST(ConvToMatmul, PatchifyConvBecomesAGemmWithTheSameValues) {
  Net n(Shape({Dim::symbol("batch"), 3, 8, 12}));
  n.conv({4, 3}, {4, 3}, {0, 0, 0, 0});
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const Tensor x = random_tensor({2, 3, 8, 12}, 9);
  const auto want = run(n.g, x);
  PassContext ctx;
  ASSERT_TRUE(conv_to_matmul(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["conv_to_matmul.converted"], 1);
  EXPECT_EQ(count(n.g, "Conv"), 0);
  EXPECT_EQ(count(n.g, "MatMul"), 1);
  EXPECT_EQ(n.g.find_value("c")->shape, Shape({Dim::symbol("batch"), 6, 2, 4}));
  const auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-6);
}

TEST(ConvToMatmul, OnePixelPointwiseConvBecomesAGemmWithTheSameValues) {
  Net n(Shape({Dim::symbol("batch"), 3, 1, 1}));
  n.conv({1, 1}, {1, 1}, {0, 0, 0, 0});
  ASSERT_TRUE(infer_graph(n.g).is_ok());
  const Tensor x = random_tensor({5, 3, 1, 1}, 4);
  const auto want = run(n.g, x);
  PassContext ctx;
  ASSERT_TRUE(conv_to_matmul(n.g, ctx).is_ok());
  ASSERT_TRUE(n.g.verify().is_ok());
  EXPECT_EQ(ctx.counters["conv_to_matmul.converted"], 1);
  EXPECT_EQ(count(n.g, "Conv"), 0);
  EXPECT_EQ(count(n.g, "Transpose"), 0);  // [B, C, 1, 1] is [B, C]: views only
  EXPECT_EQ(n.g.find_value("c")->shape, Shape({Dim::symbol("batch"), 6, 1, 1}));
  const auto got = run(n.g, x);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-6);
}

TEST(ConvToMatmul, LeavesOtherConvolutionsAlone) {
  struct C { std::vector<int64_t> k, s, p; int64_t group; Shape xs; };
  const std::vector<C> cases = {
      {{4, 3}, {4, 3}, {1, 1, 1, 1}, 1, Shape({1, 3, 8, 12})},  // padding
      {{4, 3}, {2, 3}, {0, 0, 0, 0}, 1, Shape({1, 3, 8, 12})},  // overlapping windows
      {{1, 1}, {1, 1}, {0, 0, 0, 0}, 1, Shape({1, 3, 8, 12})},  // 1x1 of many pixels: stays a convolution
      {{1, 1}, {1, 1}, {0, 0, 0, 0}, 3, Shape({1, 3, 1, 1})},   // one pixel, but groups
      {{4, 3}, {4, 3}, {0, 0, 0, 0}, 3, Shape({1, 3, 8, 12})},  // groups
      {{3, 3}, {3, 3}, {0, 0, 0, 0}, 1, Shape({1, 3, 8, 12})},  // 8 not a multiple of 3
  };
  for (const C& c : cases) {
    Net n(c.xs);
    n.conv(c.k, c.s, c.p, c.group);
    ASSERT_TRUE(infer_graph(n.g).is_ok());
    PassContext ctx;
    ASSERT_TRUE(conv_to_matmul(n.g, ctx).is_ok());
    EXPECT_EQ(count(n.g, "Conv"), 1);
    EXPECT_EQ(ctx.counters["conv_to_matmul.converted"], 0);
  }
}

}  // namespace
}  // namespace kiln::passes
