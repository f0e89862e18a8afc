#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor f32(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::from_vector<float>(dims, v); }
}  // namespace

TEST(Dft, ImpulseHasFlatSpectrum) {
  auto y = run_op("DFT", {f32({1, 4, 1}, {1, 0, 0, 0})});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 4, 2}, {1, 0, 1, 0, 1, 0, 1, 0})));
}

TEST(Dft, OnesidedKeepsHalfPlusOneBins) {
  auto y = run_op("DFT", {f32({1, 4, 1}, {1, 2, 3, 4})}, {{"onesided", int64_t(1)}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 3, 2}, {10, 0, -2, 2, -2, 0})));
}

TEST(Dft, InverseUndoesForward) {
  Tensor x = f32({1, 3, 2}, {1, 2, -1, 0.5f, 3, -2});
  auto fwd = run_op("DFT", {x});
  ASSERT_TRUE(fwd.is_ok()) << fwd.status().message();
  auto back = run_op("DFT", {(*fwd)[0]}, {{"inverse", int64_t(1)}});
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_TRUE(tensors_near((*back)[0], x, 1e-5));
}

TEST(Dft, DftLengthZeroPads) {
  auto y = run_op("DFT", {f32({1, 1, 1}, {2}), Tensor::from_vector<int64_t>({}, {3})});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({1, 3, 2}, {2, 0, 2, 0, 2, 0})));
}

TEST(Dft, RejectsComplexAxis) {
  auto y = run_op("DFT", {f32({1, 4, 1}, {})}, {{"axis", int64_t(2)}});
  ASSERT_FALSE(y.is_ok());
}

TEST(Window, HannSymmetricAndPeriodic) {
  auto sym = run_op("HannWindow", {Tensor::from_vector<int64_t>({}, {5})}, {{"periodic", int64_t(0)}});
  auto per = run_op("HannWindow", {Tensor::from_vector<int64_t>({}, {4})});
  ASSERT_TRUE(sym.is_ok() && per.is_ok());
  EXPECT_TRUE(tensors_near((*sym)[0], f32({5}, {0, 0.5f, 1, 0.5f, 0})));
  EXPECT_TRUE(tensors_near((*per)[0], f32({4}, {0, 0.5f, 1, 0.5f})));
}

TEST(Window, OutputDatatypeDouble) {
  auto y = run_op("BlackmanWindow", {Tensor::from_vector<int32_t>({}, {3})},
                  {{"output_datatype", int64_t(11)}, {"periodic", int64_t(0)}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<double>({3}, {0, 1, 0}), 1e-9));
}

TEST(Window, HammingEndpoints) {
  auto y = run_op("HammingWindow", {Tensor::from_vector<int64_t>({}, {3})}, {{"periodic", int64_t(0)}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], f32({3}, {4.f / 46, 1, 4.f / 46})));
}

TEST(Stft, FrameCountAndBins) {
  std::vector<float> sig(10, 1.0f);
  auto y = run_op("STFT", {f32({1, 10, 1}, sig), Tensor::from_vector<int64_t>({}, {2}), Tensor(),
                           Tensor::from_vector<int64_t>({}, {4})});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{1, 4, 3, 2}));
  EXPECT_NEAR((*y)[0].get_as_double(0), 4.0, 1e-6);  // DC bin of a constant frame
}

TEST(MelWeightMatrix, ShapeAndDtype) {
  auto y = run_op("MelWeightMatrix",
                  {Tensor::from_vector<int32_t>({}, {8}), Tensor::from_vector<int32_t>({}, {16}),
                   Tensor::from_vector<int32_t>({}, {8192}), f32({}, {0}), f32({}, {4096})});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{9, 8}));
  EXPECT_EQ((*y)[0].dtype(), DataType::kFloat32);
}

}  // namespace kiln::testing
