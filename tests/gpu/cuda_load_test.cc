// Load on a real GPU (label gpu; skips with "SKIPPED (no GPU)" elsewhere): one CUDA engine run by
// 8 contexts on 8 threads, each with its own stream and device buffers, for a bounded time; and
// 8 threads that create a context, run it a few times and drop it, over and over. Each run takes
// one of 16 inputs (batch 1..8, so shapes change between runs); its output must match what one
// context on one thread computed for that input (within 1e-5, float32 without TF32). After the
// warm-up (the first quarter), neither host resident memory (/proc/self/statm) nor device memory
// in use (cudaMemGetInfo) may grow by more than a small margin. KILN_LOAD_SECONDS sets each
// test's duration (default 10 s). The CPU version is tests/unit/engine/context_load_test.cc.
#include <cmath>
#include <cstdio>

#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/test_models.h"

namespace kiln {
namespace {

using namespace gpu_test;
using namespace test;

constexpr int kThreads = 8, kCases = 16;
constexpr int64_t kMaxBatch = 8, kC = 3, kH = 32, kW = 32, kF = 16, kClasses = 10;

size_t device_used() {
  size_t free = 0, total = 0;
  cudaMemGetInfo(&free, &total);
  return total - free;
}

// The small CNN of test_models.h (the CPU load test's, larger).
std::string model() { return small_cnn(kC, kH, kW, kF, kClasses); }

std::vector<uint8_t> build(CaptureLogger& log) {
  return build_engine(log, model(), BackendKind::kCUDA, {1, kC, kH, kW}, {4, kC, kH, kW}, {kMaxBatch, kC, kH, kW},
                      [](BuilderConfig& cfg) {
                        cfg.clearFlag(BuilderFlag::kTF32);
                        cfg.setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, size_t(32) << 20);
                      });
}

struct Case {
  int64_t batch = 0;
  float* x = nullptr;  // device
  std::vector<float> want;
};

// Per thread: a stream, an output buffer on the device and pinned on the host.
struct Lane {
  cudaStream_t stream = nullptr;
  float* y = nullptr;
  float* host = nullptr;
  Lane() {
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    cudaMalloc(&y, kMaxBatch * kClasses * 4);
    cudaMallocHost(&host, kMaxBatch * kClasses * 4);
  }
  ~Lane() {
    cudaStreamDestroy(stream);
    cudaFree(y);
    cudaFreeHost(host);
  }
};

bool run(ExecutionContext& ctx, const Case& c, Lane& lane) {
  if (!ctx.setInputShape("x", {c.batch, kC, kH, kW}) || !ctx.setTensorAddress("x", c.x) ||
      !ctx.setTensorAddress("y", lane.y) || !ctx.enqueue(lane.stream))
    return false;
  cudaMemcpyAsync(lane.host, lane.y, c.batch * kClasses * 4, cudaMemcpyDeviceToHost, lane.stream);
  return cudaStreamSynchronize(lane.stream) == cudaSuccess;
}

void run_and_check(ExecutionContext& ctx, const Case& c, int index, Lane& lane, Tally& t) {
  if (!run(ctx, c, lane)) return t.fail("run of case " + std::to_string(index) + " failed");
  ++t.runs;
  for (size_t i = 0; i < c.want.size(); ++i)
    if (!(std::fabs(lane.host[i] - c.want[i]) <= 1e-5f * (1 + std::fabs(c.want[i])))) {
      ++t.mismatches;
      t.problem("case " + std::to_string(index) + " element " + std::to_string(i) + ": " + std::to_string(lane.host[i]) +
                " vs " + std::to_string(c.want[i]) + " single-threaded");
      return;
    }
}

class CudaLoad : public LoadTest {
 protected:
  void SetUp() override {
    if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
    plan_ = build(log_);
    ASSERT_FALSE(plan_.empty()) << log_.first();
    Runtime rt(log_);
    engine_ = rt.deserialize(plan_.data(), plan_.size());
    ASSERT_TRUE(engine_) << log_.first();
    ASSERT_EQ(engine_->getBackend(), "cuda");
    auto ctx = engine_->createExecutionContext();
    Lane lane;
    for (auto& in : load_inputs(kCases, kMaxBatch, kC * kH * kW)) {
      Case c;
      c.batch = in.batch;
      cudaMalloc(&c.x, in.x.size() * 4);
      // From pageable memory cudaMemcpy returns before its DMA lands, and the lane's non-blocking
      // stream is not ordered after it: wait, or the first runs may read a partly written input.
      cudaMemcpy(c.x, in.x.data(), in.x.size() * 4, cudaMemcpyHostToDevice);
      cudaDeviceSynchronize();
      ASSERT_TRUE(run(*ctx, c, lane)) << log_.first();
      c.want.assign(lane.host, lane.host + c.batch * kClasses);
      cases_.push_back(std::move(c));
    }
  }
  void TearDown() override {
    for (auto& c : cases_) cudaFree(c.x);
  }

  // Runs work(thread, deadline) on kThreads threads; checks results and memory growth.
  template <class Work>
  void under_load(const char* what, Tally& t, Work work) {
    const double seconds = load_seconds();
    Growth host, dev;
    run_threads(kThreads, seconds, work, [&] {
      host.sample(resident_bytes());
      dev.sample(device_used());
    });
    const double mib = 1048576.0;
    const size_t host_margin = std::max<size_t>(size_t(16) << 20, host.at_warm / 20);
    // Contexts come and go: up to kThreads contexts' arenas, workspaces and handles may be
    // between free and allocate at any sample, so the device margin allows their churn.
    const size_t dev_margin = size_t(kThreads) * (size_t(64) << 20);
    std::printf("[load] %s: %.1f s, %ld runs (%.0f/s), %ld contexts; host resident %.1f -> peak %.1f MiB (margin %.1f); "
                "device used %.1f -> peak %.1f MiB (margin %.1f)\n",
                what, seconds, t.runs.load(), t.runs.load() / seconds, t.contexts.load(), host.at_warm / mib, host.peak / mib,
                host_margin / mib, dev.at_warm / mib, dev.peak / mib, dev_margin / mib);
    EXPECT_EQ(t.failures.load(), 0) << t.first_problem << " " << log_.first();
    EXPECT_EQ(t.mismatches.load(), 0) << t.first_problem;
    EXPECT_GT(t.runs.load(), kThreads);
    EXPECT_LE(host.peak, host.at_warm + host_margin) << "host memory grew after warm-up";
    EXPECT_LE(dev.peak, dev.at_warm + dev_margin) << "device memory grew after warm-up";
  }

  std::vector<Case> cases_;
};

// The load tests' order of cases on one thread: a mismatch here is a context's state kept from an
// earlier shape, not a race between threads.
TEST_F(CudaLoad, OneContextOneThreadCasesInAnotherOrder) {
  Tally t;
  Lane lane;
  auto ctx = engine_->createExecutionContext();
  ASSERT_TRUE(ctx);
  for (int i = 0; i < 4 * kCases; ++i) {
    const int index = (7 + i * 3) % kCases;
    run_and_check(*ctx, cases_[index], index, lane, t);
  }
  EXPECT_EQ(t.failures.load(), 0) << t.first_problem << " " << log_.first();
  EXPECT_EQ(t.mismatches.load(), 0) << t.first_problem;
}

TEST_F(CudaLoad, EightThreadsOneContextEach) {
  Tally t;
  under_load("8 threads x 1 CUDA context", t, [&](int thread, Clock::time_point deadline) {
    Lane lane;
    one_context_each(*engine_, t, thread, deadline, kCases,
                     [&](ExecutionContext& ctx, int index) { run_and_check(ctx, cases_[index], index, lane, t); });
  });
}

TEST_F(CudaLoad, ContextsCreatedAndDestroyedRepeatedly) {
  Tally t;
  under_load("8 threads, CUDA contexts created and destroyed", t, [&](int thread, Clock::time_point deadline) {
    Lane lane;
    contexts_come_and_go(*engine_, t, thread, deadline, kCases,
                         [&](ExecutionContext& ctx, int index) { run_and_check(ctx, cases_[index], index, lane, t); });
  });
}

}  // namespace
}  // namespace kiln
