// The CUDA LayerNormalization kernels in float16 (kernels/normalization.cu: the warp-per-row
// 16-byte kernel for rows that are a multiple of 8 up to 4096, the generic kernel otherwise)
// against the CPU reference in float32, on a real GPU (label gpu; skips without one). Random
// rows with a non-zero mean, random scale and bias. Bound: relative L2 1e-2.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kiln/kiln.h"
#include "onnx/onnx_pb.h"

namespace kiln {
namespace {

struct Log : Logger {
  std::string last;
  void log(Severity s, const char* m) noexcept override { if (s <= Severity::kERROR) last = m; }
};

bool gpu_usable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::string model(int64_t rows, int64_t n, std::mt19937& rng) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  auto* x = g->add_input();
  x->set_name("x");
  auto* tt = x->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : {rows, n}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const char* name : {"scale", "bias"}) {
    auto* w = g->add_initializer();
    w->set_name(name);
    w->set_data_type(onnx::TensorProto_DataType_FLOAT);
    w->add_dims(n);
    for (int64_t i = 0; i < n; ++i) w->add_float_data(nd(rng));
  }
  g->add_output()->set_name("y");
  auto* node = g->add_node();
  node->set_op_type("LayerNormalization");
  node->set_name("ln");
  for (const char* i : {"x", "scale", "bias"}) node->add_input(i);
  node->add_output("y");
  return m.SerializeAsString();
}

std::vector<float> run(const std::string& bytes, int64_t rows, int64_t n, BackendKind backend, const std::vector<float>& in) {
  Log log;
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parse(bytes.data(), bytes.size())) << log.last;
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(backend);
  if (backend == BackendKind::kCUDA) cfg->setFlag(BuilderFlag::kFP16);
  auto plan = b.buildSerializedNetwork(*net, *cfg);
  EXPECT_FALSE(plan.empty()) << log.last;
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  if (!e) { ADD_FAILURE() << log.last; return {}; }
  auto ctx = e->createExecutionContext();
  std::vector<float> y(in.size());
  void *dx = const_cast<float*>(in.data()), *dy = y.data();
  if (backend == BackendKind::kCUDA) {
    cudaMalloc(&dx, in.size() * 4);
    cudaMalloc(&dy, y.size() * 4);
    cudaMemcpy(dx, in.data(), in.size() * 4, cudaMemcpyHostToDevice);
  }
  ctx->setInputShape("x", {rows, n});
  ctx->setTensorAddress("x", dx);
  ctx->setTensorAddress("y", dy);
  EXPECT_TRUE(ctx->execute()) << log.last;
  if (backend == BackendKind::kCUDA) {
    cudaDeviceSynchronize();
    cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost);
    cudaFree(dx);
    cudaFree(dy);
  }
  return y;
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
  auto want = run(bytes, rows, n, BackendKind::kCPU, x);
  auto got = run(bytes, rows, n, BackendKind::kCUDA, x);
  ASSERT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) num += (got[i] - want[i]) * double(got[i] - want[i]), den += double(want[i]) * want[i];
  EXPECT_LT(std::sqrt(num / den), 1e-2);
}

// 768 (BERT/ViT), 1000 and 4096 take the warp-per-row kernel (K = 3, 4, 16); 100 and 5000 the
// generic one; 24 a partly idle warp.
INSTANTIATE_TEST_SUITE_P(Widths, CudaLayerNorm, ::testing::Values(768, 1000, 4096, 24, 100, 5000));

}  // namespace
}  // namespace kiln
