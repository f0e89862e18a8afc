// The CUDA LayerNormalization kernels in float16 (kernels/normalization.cu: the warp-per-row
// 16-byte kernel for rows that are a multiple of 8 up to 4096, the generic kernel otherwise)
// against the CPU reference in float32, on a real GPU (label gpu; skips without one). Random
// rows with a non-zero mean, random scale and bias. Bound: relative L2 1e-2.
#include <random>

#include "onnx/onnx_pb.h"
#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

std::string model(int64_t rows, int64_t n, std::mt19937& rng) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  add_float_input(g, "x", {rows, n});
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const char* name : {"scale", "bias"}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v) e = nd(rng);
    add_float_initializer(g, name, {n}, v);
  }
  g->add_output()->set_name("y");
  auto* node = g->add_node();
  node->set_op_type("LayerNormalization");
  node->set_name("ln");
  for (const char* i : {"x", "scale", "bias"}) node->add_input(i);
  node->add_output("y");
  return m.SerializeAsString();
}

class CudaLayerNorm : public ::testing::TestWithParam<int64_t> {};

TEST_P(CudaLayerNorm, Float16MatchesTheCpu) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  const int64_t n = GetParam(), rows = 37;
  std::mt19937 rng{uint32_t(n)};
  std::normal_distribution<float> nd(0.5f, 2.f);
  std::vector<float> x(size_t(rows * n));
  for (float& v : x) v = nd(rng);
  const std::string bytes = model(rows, n, rng);
  const std::vector<Input> in = {{"x", {rows, n}, &x}};
  const std::vector<Output> out = {{"y", x.size()}};
  auto want = run_model(bytes, BackendKind::kCPU, in, out);
  auto got = run_model(bytes, BackendKind::kCUDA, in, out);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-2);
}

// 768 (BERT/ViT), 1000 and 4096 take the warp-per-row kernel (K = 3, 4, 16); 100 and 5000 the
// generic one; 24 a partly idle warp.
INSTANTIATE_TEST_SUITE_P(Widths, CudaLayerNorm, ::testing::Values(768, 1000, 4096, 24, 100, 5000));

}  // namespace
}  // namespace kiln
