// The channels-last dense convolution (kernels/conv_nhwc.cu): 1x1 convolutions as one cuBLASLt
// GEMM (conv_gemm: bias and Relu in its epilogue, the residual as its C operand), others on
// cuDNN, each as kiln.ConvAct with fuse_epilogue's residual Add and Relu folded in, against the
// CPU reference in float32, on a real GPU (label gpu; skips without one). Batch 32 so that the
// builder runs channels-last. Bound: relative L2 1e-2.
#include <random>

#include "onnx/onnx_pb.h"
#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

struct Case { int64_t c, m, h, w, k, s; bool residual, relu; };
void PrintTo(const Case& c, std::ostream* os) {
  *os << "c" << c.c << " m" << c.m << " " << c.h << "x" << c.w << " k" << c.k << " s" << c.s
      << (c.residual ? " residual" : "") << (c.relu ? " relu" : "");
}

constexpr int64_t kN = 32;

int64_t out_dim(const Case& c, int64_t in) { return (in + 2 * (c.k / 2) - c.k) / c.s + 1; }

// y = [Relu](Conv(x, w, b) [+ z])
std::string model(const Case& c, const std::vector<float>& w, const std::vector<float>& b) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  add_float_input(g, "x", {kN, c.c, c.h, c.w});
  if (c.residual) add_float_input(g, "z", {kN, c.m, out_dim(c, c.h), out_dim(c, c.w)});
  add_float_initializer(g, "w", {c.m, c.c, c.k, c.k}, w);
  add_float_initializer(g, "b", {c.m}, b);
  auto* conv = add_node(g, "Conv", {"x", "w", "b"}, c.residual || c.relu ? "c" : "y");
  const int64_t p = c.k / 2;
  add_ints(conv, "pads", {p, p, p, p});
  add_ints(conv, "strides", {c.s, c.s});
  if (c.residual) add_node(g, "Add", {"c", "z"}, c.relu ? "s" : "y");
  if (c.relu) add_node(g, "Relu", {c.residual ? "s" : "c"}, "y");
  g->add_output()->set_name("y");
  return m.SerializeAsString();
}

class CudaConvNhwc : public ::testing::TestWithParam<Case> {};

TEST_P(CudaConvNhwc, Float16MatchesTheCpu) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  const Case c = GetParam();
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t oh = out_dim(c, c.h), ow = out_dim(c, c.w);
  std::vector<float> x(size_t(kN * c.c * c.h * c.w)), z(size_t(kN * c.m * oh * ow)), w(size_t(c.m * c.c * c.k * c.k)),
      b(size_t(c.m));
  for (float& v : x) v = nd(rng);
  for (float& v : z) v = nd(rng);
  for (float& v : w) v = nd(rng) / std::sqrt(float(c.c * c.k * c.k));
  for (float& v : b) v = 0.5f * nd(rng);
  std::vector<Input> in = {{"x", {kN, c.c, c.h, c.w}, &x}};
  if (c.residual) in.push_back({"z", {kN, c.m, oh, ow}, &z});
  const std::string bytes = model(c, w, b);
  std::string cpu_tactic, cuda_tactic;
  auto want = run_model(bytes, BackendKind::kCPU, in, {{"y", z.size()}}, "kiln.ConvAct", &cpu_tactic);
  auto got = run_model(bytes, BackendKind::kCUDA, in, {{"y", z.size()}}, "kiln.ConvAct", &cuda_tactic);
  if (c.residual || c.relu) {  // the tactic names the algorithm the build picked
    const std::string family = c.k == 1 && c.s == 1 ? "cuda.conv.gemm1x1.cublaslt.algo=" : "cuda.conv.cudnn.";
    EXPECT_EQ(cuda_tactic.rfind(family, 0), 0u) << cuda_tactic;
  }
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaConvNhwc,
                         ::testing::Values(Case{24, 144, 28, 28, 1, 1, false, false},  // EfficientNet's expand
                                           Case{144, 24, 28, 28, 1, 1, true, false},   // its project + residual
                                           Case{64, 256, 15, 13, 1, 1, true, true},    // ResNet's conv3 + Add + Relu
                                           Case{40, 72, 9, 11, 1, 1, false, true},     // Relu alone
                                           Case{16, 96, 57, 57, 1, 1, false, false},   // odd pixel count
                                           Case{32, 48, 14, 14, 3, 1, true, true},     // cuDNN: 3x3
                                           Case{24, 40, 16, 16, 1, 2, false, true}),   // cuDNN: strided 1x1
                         [](const ::testing::TestParamInfo<Case>& i) {  // e.g. c24_m144_28x28_k1_s1
                           const Case& c = i.param;
                           return "c" + std::to_string(c.c) + "_m" + std::to_string(c.m) + "_" + std::to_string(c.h) + "x" +
                                  std::to_string(c.w) + "_k" + std::to_string(c.k) + "_s" + std::to_string(c.s) +
                                  (c.residual ? "_res" : "") + (c.relu ? "_relu" : "");
                         });

}  // namespace
}  // namespace kiln
