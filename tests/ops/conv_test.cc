// Op tables for the conv family: Conv against a direct-loop reference over groups, strides,
// dilations and pads; ConvTranspose, ConvInteger, QLinearConv; and rejected inputs.
#include <random>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {

Tensor random(std::vector<int64_t> dims, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor t = Tensor::zeros(DataType::kFloat32, dims).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(g);
  return t;
}

struct Conv2dCase {
  int64_t n, c, h, w, m, kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr;
};

// Direct 2-D convolution, the definition written out.
Tensor reference_conv2d(const Conv2dCase& p, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t oh = (p.h + p.pt + p.pb - ((p.kh - 1) * p.dh + 1)) / p.sh + 1;
  const int64_t ow = (p.w + p.pl + p.pr - ((p.kw - 1) * p.dw + 1)) / p.sw + 1;
  Tensor y = Tensor::zeros(DataType::kFloat32, {p.n, p.m, oh, ow}).value();
  const int64_t cg = p.c / p.group, mg = p.m / p.group;
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t m = 0; m < p.m; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b.data<float>()[m];
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ki = 0; ki < p.kh; ++ki)
              for (int64_t kj = 0; kj < p.kw; ++kj) {
                int64_t yy = i * p.sh - p.pt + ki * p.dh, xx = j * p.sw - p.pl + kj * p.dw;
                if (yy < 0 || yy >= p.h || xx < 0 || xx >= p.w) continue;
                int64_t ci = (m / mg) * cg + c;
                acc += x.data<float>()[((n * p.c + ci) * p.h + yy) * p.w + xx] *
                       w.data<float>()[((m * cg + c) * p.kh + ki) * p.kw + kj];
              }
          y.mutable_data<float>()[((n * p.m + m) * oh + i) * ow + j] = float(acc);
        }
  return y;
}

}  // namespace

TEST(Conv, MatchesDirectLoopReference) {
  const std::vector<Conv2dCase> cases = {
      {1, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   // padded 3x3
      {2, 4, 9, 8, 6, 3, 2, 2, 2, 3, 1, 1, 0, 1, 2, 0},   // groups, strides, asymmetric pads
      {1, 2, 10, 10, 2, 3, 3, 1, 1, 1, 2, 3, 2, 2, 2, 2}, // dilations
      {1, 6, 5, 5, 12, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1},  // depthwise with multiplier 2
      {1, 8, 4, 4, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},   // pointwise (no im2col)
  };
  unsigned seed = 1;
  for (const auto& p : cases) {
    Tensor x = random({p.n, p.c, p.h, p.w}, seed++), w = random({p.m, p.c / p.group, p.kh, p.kw}, seed++),
           b = random({p.m}, seed++);
    auto y = run_op("Conv", {x, w, b},
                    {{"group", p.group}, {"strides", std::vector<int64_t>{p.sh, p.sw}},
                     {"dilations", std::vector<int64_t>{p.dh, p.dw}},
                     {"pads", std::vector<int64_t>{p.pt, p.pl, p.pb, p.pr}}});
    ASSERT_TRUE(y.is_ok()) << y.status().message();
    EXPECT_TRUE(tensors_near((*y)[0], reference_conv2d(p, x, w, b), 1e-4));
  }
}

TEST(Conv, OneAndThreeDimensionalWithAutoPad) {
  Tensor x = Tensor::from_vector<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  Tensor w = Tensor::from_vector<float>({1, 1, 3}, {1, 1, 1});
  auto y = run_op("Conv", {x, w}, {{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2}}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // out = ceil(5/2) = 3, total pad 2 -> 1 each side: windows [0,1,2] [2,3,4] [4,5,0].
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 3}, {3, 9, 9})));
  auto y3 = run_op("Conv", {random({1, 2, 3, 4, 5}, 7), random({3, 2, 2, 2, 2}, 8)});
  ASSERT_TRUE(y3.is_ok()) << y3.status().message();
  EXPECT_EQ((*y3)[0].dims(), (std::vector<int64_t>{1, 3, 2, 3, 4}));
}

TEST(Conv, RejectsMismatchedChannelsAndBias) {
  auto y = run_op("Conv", {random({1, 3, 4, 4}, 1), random({2, 2, 3, 3}, 2)});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("channels"), std::string::npos) << y.status().message();
  EXPECT_FALSE(run_op("Conv", {random({1, 2, 4, 4}, 1), random({2, 2, 3, 3}, 2), random({3}, 3)}).is_ok());
  EXPECT_FALSE(run_op("Conv", {random({1, 2, 4, 4}, 1), random({2, 2, 3, 3}, 2)},
                      {{"strides", std::vector<int64_t>{0, 1}}}).is_ok());
}

TEST(ConvTranspose, StridedOutputPaddingAndOutputShape) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3}, {1, 2, 3});
  Tensor w = Tensor::from_vector<float>({1, 2, 2}, {1, 1, 1, -1});
  auto y = run_op("ConvTranspose", {x, w}, {{"strides", std::vector<int64_t>{2}}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 2, 6}, {1, 1, 2, 2, 3, 3, 1, -1, 2, -2, 3, -3})));
  auto yp = run_op("ConvTranspose", {x, w, Tensor::from_vector<float>({2}, {10, 20})},
                   {{"strides", std::vector<int64_t>{2}}, {"output_padding", std::vector<int64_t>{1}}});
  ASSERT_TRUE(yp.is_ok()) << yp.status().message();
  EXPECT_TRUE(tensors_near((*yp)[0], Tensor::from_vector<float>({1, 2, 7}, {11, 11, 12, 12, 13, 13, 10, 21, 19, 22, 18,
                                                                            23, 17, 20})));
  auto ys = run_op("ConvTranspose", {x, w}, {{"strides", std::vector<int64_t>{2}}, {"output_shape", std::vector<int64_t>{7}}});
  ASSERT_TRUE(ys.is_ok()) << ys.status().message();
  EXPECT_EQ((*ys)[0].dims(), (std::vector<int64_t>{1, 2, 7}));
}

TEST(ConvInteger, SubtractsZeroPoints) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {2, 3, 4, 5});
  Tensor w = Tensor::from_vector<uint8_t>({1, 1, 1, 1}, {3});
  auto y = run_op("ConvInteger", {x, w, Tensor::scalar<uint8_t>(1), Tensor::scalar<uint8_t>(1)}, {}, 1, 10);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int32_t>({1, 1, 2, 2}, {2, 4, 6, 8})));
}

TEST(QLinearConv, RequantizesWithBias) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 1, 2}, {10, 20});
  Tensor w = Tensor::from_vector<int8_t>({1, 1, 1, 1}, {2});
  auto y = run_op("QLinearConv",
                  {x, Tensor::scalar<float>(0.5f), Tensor::scalar<uint8_t>(0), w, Tensor::scalar<float>(1.0f),
                   Tensor::scalar<int8_t>(0), Tensor::scalar<float>(2.0f), Tensor::scalar<uint8_t>(100),
                   Tensor::from_vector<int32_t>({1}, {4})},
                  {}, 1, 10);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // (10*2 + 4) * 0.5 / 2 = 6 -> 106; (20*2 + 4) * 0.25 = 11 -> 111.
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<uint8_t>({1, 1, 1, 2}, {106, 111})));
}

}  // namespace kiln::testing

namespace kiln::testing {

TEST(Conv, Col2ImSumsOverlappingBlocks) {
  // One channel, 1x3 image, 1x2 blocks at stride 1: columns [[a, b], [c, d]] -> [a, b + c, d].
  Tensor cols = Tensor::from_vector<float>({1, 2, 2}, {1, 2, 10, 20});
  Tensor image = Tensor::from_vector<int64_t>({2}, {1, 3});
  Tensor block = Tensor::from_vector<int64_t>({2}, {1, 2});
  auto y = run_op("Col2Im", {cols, image, block}, {}, 1, 18);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 1, 3}, {1, 12, 20})));
}

TEST(Conv, DeformConvWithZeroOffsetsIsConv) {
  Tensor x = random({1, 2, 4, 4}, 7), w = random({3, 2, 2, 2}, 8), b = random({3}, 9);
  Tensor offset = Tensor::zeros(DataType::kFloat32, {1, 8, 3, 3}).value();
  auto d = run_op("DeformConv", {x, w, offset, b}, {}, 1, 19);
  auto c = run_op("Conv", {x, w, b});
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_TRUE(tensors_near((*d)[0], (*c)[0]));
}

TEST(Conv, DeformConvHalfPixelOffsetInterpolates) {
  // 1x1 kernel of weight 1, offset +0.5 along w: the average of neighbours, zero past the edge.
  Tensor x = Tensor::from_vector<float>({1, 1, 1, 2}, {2, 4});
  Tensor w = Tensor::from_vector<float>({1, 1, 1, 1}, {1});
  Tensor offset = Tensor::from_vector<float>({1, 2, 1, 2}, {0, 0, 0.5f, 0.5f});
  auto y = run_op("DeformConv", {x, w, offset}, {}, 1, 19);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 1, 2}, {3, 2})));
}

TEST(Conv, CausalConvWithStateCarriesTheTail) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3}, {1, 2, 3});
  Tensor w = Tensor::from_vector<float>({1, 1, 2}, {1, 10});
  Tensor past = Tensor::from_vector<float>({1, 1, 1}, {5});
  auto y = run_op("CausalConvWithState", {x, w, Tensor(), past}, {}, 2, 24);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 1, 3}, {15, 21, 32})));
  EXPECT_TRUE(tensors_near((*y)[1], Tensor::from_vector<float>({1, 1, 1}, {3})));
}

}  // namespace kiln::testing
