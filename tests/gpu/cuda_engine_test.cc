// CUDA engines on a real GPU (label gpu; every test skips with "SKIPPED (no GPU)" elsewhere):
// a whole engine captured in a CUDA graph (so enqueue allocates, synchronizes and copies
// nothing for static shapes), results equal to the CPU engine's, and an out-of-memory shape
// that fails cleanly and leaves the engine usable.
#include <cmath>
#include <random>

#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

#define REQUIRE_GPU() \
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)"

// y[b,64] = Relu(x * w + x) reshaped: Mul, Add, Relu, Reshape only (all with CUDA kernels).
std::string model() {
  test::ModelBuilder m;
  m.add_input("x", {"batch", 8, 8}).add_output("y");
  std::vector<float> w;
  for (int i = 0; i < 8; ++i) w.push_back(0.25f * (i - 3));
  m.add_initializer("w", {8}, w);
  m.add_int64_initializer("shape", {2}, {0, 64});
  m.add_node("Mul", {"x", "w"}, "xw", {}, "Mul_0");
  m.add_node("Add", {"xw", "x"}, "s", {}, "Add_0");
  m.add_node("Relu", {"s"}, "r", {}, "Relu_0");
  m.add_node("Reshape", {"r", "shape"}, "y", {}, "Reshape_0");
  return m.bytes();
}

std::unique_ptr<Engine> build(Log& log, Runtime& rt, BackendKind backend, int64_t max_batch) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  std::string bytes = model();
  EXPECT_TRUE(p.parse(bytes.data(), bytes.size())) << log.last;
  auto c = b.createBuilderConfig();
  c->setBackend(backend);
  OptimizationProfile prof;
  prof.setDimensions("x", OptProfileSelector::kMIN, {1, 8, 8});
  prof.setDimensions("x", OptProfileSelector::kOPT, {4, 8, 8});
  prof.setDimensions("x", OptProfileSelector::kMAX, {max_batch, 8, 8});
  c->addOptimizationProfile(prof);
  auto plan = b.buildSerializedNetwork(*net, *c);
  EXPECT_FALSE(plan.empty()) << log.last;
  return rt.deserialize(plan.data(), plan.size());
}

std::vector<float> inputs(int64_t batch) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(batch * 64);
  for (float& v : x) v = u(rng);
  return x;
}

std::vector<float> run_cpu(Log& log, const std::vector<float>& x, int64_t batch) {
  Runtime rt(log);
  auto e = build(log, rt, BackendKind::kCPU, 16);
  auto ctx = e->createExecutionContext();
  std::vector<float> y(batch * 64);
  ctx->setInputShape("x", {batch, 8, 8});
  ctx->setTensorAddress("x", const_cast<float*>(x.data()));
  ctx->setTensorAddress("y", y.data());
  EXPECT_TRUE(ctx->execute()) << log.last;
  return y;
}

TEST(CudaEngine, WholeEngineCapturesInACudaGraphAndMatchesTheCpu) {
  REQUIRE_GPU();
  Log log;
  Runtime rt(log);
  auto e = build(log, rt, BackendKind::kCUDA, 16);
  ASSERT_TRUE(e) << log.last;
  ASSERT_EQ(e->getBackend(), "cuda");
  for (int i = 0; i < e->getNbLayers(); ++i) EXPECT_NE(e->getLayerInformation(i).tactic, "cpu.fallback");
  auto ctx = e->createExecutionContext();
  const int64_t batch = 4;
  auto x = inputs(batch);
  float *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, x.size() * 4), cudaSuccess);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  ASSERT_TRUE(ctx->setInputShape("x", {batch, 8, 8}));
  ctx->setTensorAddress("x", dx);
  ctx->setTensorAddress("y", dy);
  cudaStream_t s;
  cudaStreamCreate(&s);
  ASSERT_TRUE(ctx->enqueue(s)) << log.last;  // first run: shapes evaluated, memory planned
  cudaStreamSynchronize(s);
  // Capture fails if enqueue allocates, synchronizes or copies from pageable host memory.
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  bool ok = ctx->enqueue(s);
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess) << "enqueue did host work a CUDA graph cannot hold";
  ASSERT_TRUE(ok) << log.last;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaMemset(dy, 0, x.size() * 4);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  cudaStreamSynchronize(s);
  std::vector<float> y(x.size());
  cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost);
  auto want = run_cpu(log, x, batch);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-5f * (1 + std::fabs(want[i])));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  cudaFree(dx);
  cudaFree(dy);
}

TEST(CudaEngine, OutOfMemoryShapeFailsCleanlyAndTheEngineStaysUsable) {
  REQUIRE_GPU();
  Log log;
  Runtime rt(log);
  const int64_t huge = int64_t(1) << 34;  // 16 Gi rows of 64 floats: far beyond any GPU
  auto e = build(log, rt, BackendKind::kCUDA, huge);
  ASSERT_TRUE(e) << log.last;
  auto ctx = e->createExecutionContext();
  ASSERT_TRUE(ctx->setInputShape("x", {huge, 8, 8}));
  float* dummy = nullptr;
  cudaMalloc(&dummy, 256);
  ctx->setTensorAddress("x", dummy);
  ctx->setTensorAddress("y", dummy);
  EXPECT_FALSE(ctx->execute());
  EXPECT_NE(log.last.find("out of GPU memory"), std::string::npos) << log.last;
  cudaFree(dummy);
  // The same context, a shape that fits: runs and matches the CPU.
  const int64_t batch = 2;
  auto x = inputs(batch);
  float *dx = nullptr, *dy = nullptr;
  cudaMalloc(&dx, x.size() * 4);
  cudaMalloc(&dy, x.size() * 4);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  ASSERT_TRUE(ctx->setInputShape("x", {batch, 8, 8}));
  ctx->setTensorAddress("x", dx);
  ctx->setTensorAddress("y", dy);
  ASSERT_TRUE(ctx->execute()) << log.last;
  cudaDeviceSynchronize();
  std::vector<float> y(x.size());
  cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost);
  auto want = run_cpu(log, x, batch);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-5f * (1 + std::fabs(want[i])));
  cudaFree(dx);
  cudaFree(dy);
}

}  // namespace
}  // namespace kiln
