// Out of device memory on a real GPU (label gpu; every test skips with "SKIPPED (no GPU)"
// elsewhere). Most of the free device memory is taken with cudaMalloc first, then:
//   - setInputShape to a shape whose activations do not fit: the run fails with one error that
//     names the input tensor and says out of GPU memory; the same context then runs a small shape
//     with the same results as before, and the big shape once the memory is given back;
//   - createExecutionContext whose workspace does not fit: null and one error; later ones work;
//   - loading an engine whose weights do not fit: null and one error; it loads once memory is back;
//   - building for CUDA with the memory taken: an engine or one clear error, never a crash.
#include <cmath>
#include <cstring>

#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

#define REQUIRE_GPU() \
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)"

using test::CaptureLogger;
using test::contains;

// Takes device memory with cudaMalloc until about `leave` bytes are free; gives it back when
// destroyed (or release()).
class DeviceHog {
 public:
  explicit DeviceHog(size_t leave) {
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    size_t chunk = size_t(1) << 30;
    while (chunk >= (size_t(1) << 20)) {
      cudaMemGetInfo(&free, &total);
      if (free <= leave + chunk) { chunk /= 2; continue; }
      void* p = nullptr;
      if (cudaMalloc(&p, chunk) != cudaSuccess) { cudaGetLastError(); chunk /= 2; continue; }
      blocks_.push_back(p);
    }
    cudaMemGetInfo(&free, &total);
    free_ = free;
  }
  ~DeviceHog() { release(); }
  void release() {
    for (void* p : blocks_) cudaFree(p);
    blocks_.clear();
  }
  size_t free_bytes() const { return free_; }

 private:
  std::vector<void*> blocks_;
  size_t free_ = 0;
};

constexpr int64_t kIn = 256, kHidden = 4096, kOut = 16;

// y[N,16] = Relu(x[N,256] @ w1[256,4096]) @ w2[4096,16]: h is 16 KiB per row.
std::string model(int64_t hidden = kHidden) {
  test::ModelBuilder m;
  m.add_input("x", {"N", kIn}).add_output("y");
  test::Uniform u(5, -0.1f, 0.1f);
  m.add_initializer("w1", {kIn, hidden}, u, test::Storage::kRawData);
  m.add_initializer("w2", {hidden, kOut}, u, test::Storage::kRawData);
  m.add_node("MatMul", {"x", "w1"}, "h");
  m.add_node("Relu", {"h"}, "r");
  m.add_node("MatMul", {"r", "w2"}, "y");
  return m.bytes();
}

std::vector<uint8_t> build(CaptureLogger& log, const std::string& bytes, int64_t max_n, size_t workspace = 0) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  if (!p.parse(bytes.data(), bytes.size())) return {};
  auto c = b.createBuilderConfig();
  c->setBackend(BackendKind::kCUDA);
  c->clearFlag(BuilderFlag::kTF32);
  if (workspace) c->setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, workspace);
  OptimizationProfile prof;
  prof.setDimensions("x", OptProfileSelector::kMIN, {1, kIn});
  prof.setDimensions("x", OptProfileSelector::kOPT, {8, kIn});
  prof.setDimensions("x", OptProfileSelector::kMAX, {max_n, kIn});
  c->addOptimizationProfile(prof);
  return b.buildSerializedNetwork(*net, *c);
}

// Device buffers for x (filled from a fixed pattern) and y, at up to `n` rows.
struct Buffers {
  float *x = nullptr, *y = nullptr;
  explicit Buffers(int64_t n) {
    cudaMalloc(&x, n * kIn * 4);
    cudaMalloc(&y, n * kOut * 4);
    std::vector<float> hx(n * kIn);
    for (size_t i = 0; i < hx.size(); ++i) hx[i] = static_cast<float>(static_cast<int>(i % 13) - 6) / 6.f;
    cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice);
  }
  ~Buffers() { cudaFree(x); cudaFree(y); }
};

bool run(ExecutionContext& ctx, Buffers& b, int64_t n, std::vector<float>* out = nullptr) {
  if (!ctx.setInputShape("x", {n, kIn}) || !ctx.setTensorAddress("x", b.x) || !ctx.setTensorAddress("y", b.y)) return false;
  cudaMemset(b.y, 0, n * kOut * 4);
  if (!ctx.execute()) return false;
  cudaDeviceSynchronize();
  if (out) {
    out->resize(n * kOut);
    cudaMemcpy(out->data(), b.y, out->size() * 4, cudaMemcpyDeviceToHost);
  }
  return true;
}

TEST(CudaFault, SetInputShapeOutOfMemoryNamesTheTensorAndTheContextStaysUsable) {
  REQUIRE_GPU();
  CaptureLogger log;
  const int64_t big = 131072;  // h and r: 2 GiB each
  auto plan = build(log, model(), 1 << 20);
  ASSERT_FALSE(plan.empty()) << log.last();
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  ASSERT_TRUE(e) << log.last();
  auto ctx = e->createExecutionContext();
  ASSERT_TRUE(ctx) << log.last();
  Buffers buf(big);
  std::vector<float> want, got;
  ASSERT_TRUE(run(*ctx, buf, 8, &want)) << log.last();  // warm: kernels loaded, handles made
  {
    DeviceHog hog(size_t(512) << 20);
    std::printf("[fault] %.0f MiB of device memory left free\n", hog.free_bytes() / 1048576.0);
    for (int round = 0; round < 2; ++round) {
      log.errors.clear();
      EXPECT_TRUE(ctx->setInputShape("x", {big, kIn})) << "within the profile: accepted; memory comes at the run";
      EXPECT_FALSE(run(*ctx, buf, big)) << "4 GiB of activations ran with 512 MiB free";
      EXPECT_EQ(log.errors.size(), 1u) << log.last();
      EXPECT_TRUE(contains(log.last(), "out of GPU memory")) << log.last();
      EXPECT_TRUE(contains(log.last(), "'x'") && contains(log.last(), "131072x256")) << "the error should name the input and its shape: "
                                                                          << log.last();
      log.errors.clear();
      ASSERT_TRUE(run(*ctx, buf, 8, &got)) << "the context is unusable after the failure: " << log.last();
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << i;
    }
  }
  EXPECT_TRUE(run(*ctx, buf, big)) << "with the memory back, the big shape runs: " << log.last();
  ASSERT_TRUE(run(*ctx, buf, 8, &got)) << log.last();
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << i;
}

TEST(CudaFault, ContextCreationOutOfMemoryIsOneErrorAndLaterContextsWork) {
  REQUIRE_GPU();
  CaptureLogger log;
  auto plan = build(log, model(), 64, size_t(1) << 30);  // each context takes a 1 GiB workspace
  ASSERT_FALSE(plan.empty()) << log.last();
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  ASSERT_TRUE(e) << log.last();
  Buffers buf(8);
  std::vector<float> want, got;
  {
    auto first = e->createExecutionContext();
    ASSERT_TRUE(first) << log.last();
    ASSERT_TRUE(run(*first, buf, 8, &want)) << log.last();
  }
  {
    DeviceHog hog(size_t(256) << 20);
    log.errors.clear();
    auto ctx = e->createExecutionContext();
    EXPECT_FALSE(ctx) << "a context with a 1 GiB workspace was created with 256 MiB free";
    EXPECT_EQ(log.errors.size(), 1u) << log.last();
    EXPECT_TRUE(contains(log.last(), "createExecutionContext") && contains(log.last(), "out of GPU memory")) << log.last();
  }
  auto ctx = e->createExecutionContext();
  ASSERT_TRUE(ctx) << log.last();
  ASSERT_TRUE(run(*ctx, buf, 8, &got)) << log.last();
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << i;
}

TEST(CudaFault, LoadOutOfMemoryIsOneErrorAndTheEngineLoadsLater) {
  REQUIRE_GPU();
  CaptureLogger log;
  auto plan = build(log, model(65536), 64);  // w1: 64 MiB of weights
  ASSERT_FALSE(plan.empty()) << log.last();
  Runtime rt(log);
  {
    DeviceHog hog(size_t(16) << 20);
    log.errors.clear();
    auto e = rt.deserialize(plan.data(), plan.size());
    EXPECT_FALSE(e) << "64 MiB of weights were loaded with 16 MiB free";
    EXPECT_EQ(log.errors.size(), 1u) << log.last();
    EXPECT_TRUE(contains(log.last(), "cannot load engine") && contains(log.last(), "out of GPU memory")) << log.last();
  }
  auto e = rt.deserialize(plan.data(), plan.size());
  ASSERT_TRUE(e) << log.last();
  auto ctx = e->createExecutionContext();
  ASSERT_TRUE(ctx) << log.last();
  Buffers buf(8);
  EXPECT_TRUE(run(*ctx, buf, 8)) << log.last();
}

TEST(CudaFault, BuildWithDeviceMemoryTakenIsAnEngineOrOneClearError) {
  REQUIRE_GPU();
  CaptureLogger log;
  const std::string bytes = model();
  std::vector<uint8_t> plan;
  {
    DeviceHog hog(size_t(16) << 20);
    plan = build(log, bytes, 64);
    if (plan.empty()) {
      EXPECT_EQ(log.errors.size(), 1u) << log.last();
      EXPECT_TRUE(contains(log.last(), "out of GPU memory") || contains(log.last(), "out of memory")) << log.last();
    }
  }
  std::printf("[fault] build with 16 MiB free: %s\n", plan.empty() ? ("refused: " + log.last()).c_str() : "built");
  if (plan.empty()) plan = build(log, bytes, 64);
  ASSERT_FALSE(plan.empty()) << log.last();
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  ASSERT_TRUE(e) << log.last();
  auto ctx = e->createExecutionContext();
  Buffers buf(8);
  EXPECT_TRUE(run(*ctx, buf, 8)) << log.last();
}

}  // namespace
}  // namespace kiln
