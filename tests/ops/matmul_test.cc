// Op tables for the matmul family: MatMul, Gemm, Einsum, Det, MatMulInteger, QLinearMatMul.
#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {

Tensor iota(std::vector<int64_t> dims, float start = 1, float step = 1) {
  Tensor t = Tensor::zeros(DataType::kFloat32, dims).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = start + step * float(i);
  return t;
}

Tensor run1(const std::string& op, const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs = {}) {
  auto y = run_op(op, in, std::move(attrs));
  EXPECT_TRUE(y.is_ok()) << y.status().message();
  return y.is_ok() ? (*y)[0] : Tensor();
}

}  // namespace

TEST(MatMul, PromotesOneDimensionalOperands) {
  Tensor a = iota({3}), b = iota({3, 2});
  EXPECT_TRUE(tensors_near(run1("MatMul", {a, b}), Tensor::from_vector<float>({2}, {22, 28})));
  EXPECT_TRUE(tensors_near(run1("MatMul", {iota({2, 3}), a}), Tensor::from_vector<float>({2}, {14, 32})));
  EXPECT_TRUE(tensors_near(run1("MatMul", {a, a}), Tensor::scalar<float>(14)));
}

TEST(MatMul, BroadcastsBatchDims) {
  Tensor a = iota({2, 1, 2, 3}), b = iota({3, 3, 2}, 0.5f, 0.25f);
  Tensor y = run1("MatMul", {a, b});
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, 3, 2, 2}));
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t c = 0; c < 2; ++c) {
          double want = 0;
          for (int64_t k = 0; k < 3; ++k) want += pa[i * 6 + r * 3 + k] * pb[j * 6 + k * 2 + c];
          EXPECT_NEAR(y.data<float>()[((i * 3 + j) * 2 + r) * 2 + c], want, 1e-4);
        }
}

TEST(MatMul, IntegerAndHalf) {
  auto yi = run1("MatMul", {Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4}), Tensor::from_vector<int32_t>({2, 1}, {5, 6})});
  EXPECT_TRUE(tensors_near(yi, Tensor::from_vector<int32_t>({2, 1}, {17, 39})));
  auto yh = run1("MatMul", {Tensor::from_vector<Half>({1, 2}, {Half(1.5f), Half(2)}), Tensor::from_vector<Half>({2, 1}, {Half(2), Half(4)})});
  EXPECT_TRUE(tensors_near(yh, Tensor::from_vector<Half>({1, 1}, {Half(11)})));
}

TEST(MatMul, RejectsInnerMismatch) {
  auto y = run_op("MatMul", {iota({2, 3}), iota({2, 3})});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("inner"), std::string::npos) << y.status().message();
}

TEST(Gemm, TransposesScalesAndBroadcastsC) {
  Tensor a = iota({3, 2});  // transA -> [2, 3]
  Tensor b = iota({2, 3});  // transB -> [3, 2]
  Tensor c = Tensor::from_vector<float>({2}, {1, -1});
  Tensor y = run1("Gemm", {a, b, c}, {{"transA", int64_t(1)}, {"transB", int64_t(1)}, {"alpha", 2.0f}, {"beta", 3.0f}});
  // A^T = [[1,3,5],[2,4,6]], B^T = [[1,4],[2,5],[3,6]] -> A^T B^T = [[22,49],[28,64]].
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({2, 2}, {47, 95, 59, 125})));
  Tensor y2 = run1("Gemm", {iota({2, 3}), iota({3, 2}), Tensor::scalar<float>(1)});
  EXPECT_TRUE(tensors_near(y2, Tensor::from_vector<float>({2, 2}, {23, 29, 50, 65})));
  Tensor y3 = run1("Gemm", {iota({2, 3}), iota({3, 2})});
  EXPECT_TRUE(tensors_near(y3, Tensor::from_vector<float>({2, 2}, {22, 28, 49, 64})));
}

TEST(Gemm, RejectsBadC) {
  auto y = run_op("Gemm", {iota({2, 3}), iota({3, 2}), iota({3})});
  EXPECT_FALSE(y.is_ok());
}

TEST(Einsum, TransposeTraceDiagonalAndImplicit) {
  Tensor m = iota({2, 2});
  EXPECT_TRUE(tensors_near(run1("Einsum", {m}, {{"equation", std::string("ij->ji")}}),
                           Tensor::from_vector<float>({2, 2}, {1, 3, 2, 4})));
  EXPECT_TRUE(tensors_near(run1("Einsum", {m}, {{"equation", std::string("ii->")}}), Tensor::scalar<float>(5)));
  EXPECT_TRUE(tensors_near(run1("Einsum", {m}, {{"equation", std::string("ii->i")}}),
                           Tensor::from_vector<float>({2}, {1, 4})));
  // Implicit output: labels seen once, alphabetical -> "ik".
  EXPECT_TRUE(tensors_near(run1("Einsum", {m, m}, {{"equation", std::string("ij,jk")}}),
                           Tensor::from_vector<float>({2, 2}, {7, 10, 15, 22})));
  EXPECT_TRUE(tensors_near(run1("Einsum", {iota({2}), iota({3})}, {{"equation", std::string("i,j->ij")}}),
                           Tensor::from_vector<float>({2, 3}, {1, 2, 3, 2, 4, 6})));
}

TEST(Einsum, EllipsisBatchMatmulBroadcasts) {
  Tensor a = iota({2, 2, 3}), b = iota({3, 1});
  Tensor y = run1("Einsum", {a, b}, {{"equation", std::string("...ij,...jk->...ik")}});
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({2, 2, 1}, {14, 32, 50, 68})));
}

TEST(Einsum, AttentionStyleContractionMatchesDefinition) {
  Tensor q = iota({2, 3, 4}, 0.5f, 0.1f), k = iota({2, 5, 4}, -1.0f, 0.07f);
  Tensor y = run1("Einsum", {q, k}, {{"equation", std::string("bid,bjd->bji")}});
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, 5, 3}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t i = 0; i < 3; ++i) {
        double want = 0;
        for (int64_t d = 0; d < 4; ++d) want += q.data<float>()[(b * 3 + i) * 4 + d] * k.data<float>()[(b * 5 + j) * 4 + d];
        EXPECT_NEAR(y.data<float>()[(b * 5 + j) * 3 + i], want, 1e-4);
      }
  // A label summed within one operand takes the general loop.
  EXPECT_TRUE(tensors_near(run1("Einsum", {iota({2, 2}), iota({2})}, {{"equation", std::string("ij,j->")}}),
                           Tensor::scalar<float>(1 * 1 + 2 * 2 + 3 * 1 + 4 * 2)));
}

TEST(Einsum, RejectsBadEquation) {
  EXPECT_FALSE(run_op("Einsum", {iota({2, 2})}, {{"equation", std::string("ijk->i")}}).is_ok());
  EXPECT_FALSE(run_op("Einsum", {iota({2, 2})}, {{"equation", std::string("i1->i")}}).is_ok());
  EXPECT_FALSE(run_op("Einsum", {iota({2, 3})}, {{"equation", std::string("ii->i")}}).is_ok());
}

TEST(Det, SquareAndBatched) {
  EXPECT_TRUE(tensors_near(run1("Det", {iota({2, 2})}), Tensor::scalar<float>(-2)));
  Tensor b = Tensor::from_vector<float>({2, 3, 3}, {2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 1, 0, 1, 0, 0, 0, 0, 1});
  EXPECT_TRUE(tensors_near(run1("Det", {b}), Tensor::from_vector<float>({2}, {24, -1})));
  EXPECT_FALSE(run_op("Det", {iota({2, 3})}).is_ok());
}

TEST(MatMulInteger, SubtractsZeroPoints) {
  Tensor a = Tensor::from_vector<uint8_t>({2, 2}, {11, 12, 13, 14});
  Tensor b = Tensor::from_vector<uint8_t>({2, 1}, {3, 4});
  auto y = run_op("MatMulInteger", {a, b, Tensor::scalar<uint8_t>(10), Tensor::scalar<uint8_t>(2)}, {}, 1, 10);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int32_t>({2, 1}, {5, 11})));
}

TEST(QLinearMatMul, RequantizesWithSaturation) {
  Tensor a = Tensor::from_vector<uint8_t>({1, 2}, {130, 140});
  Tensor b = Tensor::from_vector<uint8_t>({2, 1}, {129, 131});
  auto y = run_op("QLinearMatMul",
                  {a, Tensor::scalar<float>(0.5f), Tensor::scalar<uint8_t>(128), b, Tensor::scalar<float>(0.25f),
                   Tensor::scalar<uint8_t>(128), Tensor::scalar<float>(0.1f), Tensor::scalar<uint8_t>(10)},
                  {}, 1, 10);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // (2*1 + 12*3) * 0.125 / 0.1 = 47.5 -> 48 (half to even) + 10.
  EXPECT_EQ((*y)[0].data<uint8_t>()[0], 58);
}

}  // namespace kiln::testing
