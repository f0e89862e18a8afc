// Load: one CPU engine run by many execution contexts on many threads for a bounded time.
//   EightThreadsOneContextEach: 8 threads, one long-lived context each.
//   ContextsCreatedAndDestroyedRepeatedly: 8 threads that create a context, run it a few times
//     and drop it, over and over; one of them also loads a fresh engine from the same bytes
//     each round and drops it.
// Each run takes one of 16 inputs (batch 1..8, so input shapes change between runs) and its
// output must be bit-identical to what one context on one thread computed for that input.
// Resident memory (/proc/self/statm) must not grow after the warm-up (the first quarter of the
// run) by more than a small margin. Each test runs KILN_LOAD_SECONDS seconds (default 10; set
// minutes for a soak). Its helpers are header-only (tests/unit/test_models.h, shared with the GPU
// version tests/gpu/cuda_load_test.cc), so it can be built alone, e.g. under ThreadSanitizer;
// under a sanitizer the memory check only prints (its allocator keeps freed memory on purpose).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "tests/unit/test_models.h"

namespace kiln {
namespace {

using namespace test;

constexpr int kThreads = 8;
constexpr int kCases = 16;
constexpr int64_t kMaxBatch = 8;
constexpr int64_t kC = 3, kH = 12, kW = 12, kF = 8, kClasses = 10;

// The small CNN of test_models.h (Conv+Relu and Conv + residual Add + Relu fused to kiln.ConvAct,
// MatMul + bias to kiln.MatMulBias). x: [N,3,12,12] -> y: [N,10].
std::string model() { return small_cnn(kC, kH, kW, kF, kClasses); }

std::vector<uint8_t> build(CaptureLogger& log) {
  return build_engine(log, model(), BackendKind::kCPU, {1, kC, kH, kW}, {4, kC, kH, kW}, {kMaxBatch, kC, kH, kW});
}

struct Case {
  int64_t batch;
  std::vector<float> x, want;
};

std::vector<Case> make_cases() {
  std::vector<Case> cases;
  for (auto& in : load_inputs(kCases, kMaxBatch, kC * kH * kW)) cases.push_back({in.batch, std::move(in.x), {}});
  return cases;
}

// One run of `c` on `ctx`; false (and *error) when an API call fails.
bool run(ExecutionContext& ctx, const Case& c, std::vector<float>& y, std::string* error) {
  y.assign(c.batch * kClasses, -1.f);
  if (!ctx.setInputShape("x", {c.batch, kC, kH, kW})) return *error = "setInputShape", false;
  if (ctx.getTensorShape("y") != Dims{c.batch, kClasses}) return *error = "getTensorShape(y)", false;
  if (!ctx.setTensorAddress("x", const_cast<float*>(c.x.data())) || !ctx.setTensorAddress("y", y.data()))
    return *error = "setTensorAddress", false;
  if (!ctx.execute()) return *error = "execute", false;
  return true;
}

void run_and_check(ExecutionContext& ctx, const Case& c, int index, Tally& t, std::vector<float>& y) {
  std::string error;
  if (!run(ctx, c, y, &error)) return t.fail(error + " failed on case " + std::to_string(index));
  ++t.runs;
  if (std::memcmp(y.data(), c.want.data(), y.size() * sizeof(float)) != 0) {
    ++t.mismatches;
    t.problem("case " + std::to_string(index) + " (batch " + std::to_string(c.batch) +
              ") differs from the single-thread result");
  }
}

// Runs `work(thread, deadline)` on kThreads threads for load_seconds(); checks that after the
// warm-up (the first quarter) resident memory grows by at most max(8 MiB, 5%).
template <class Work>
void under_load(const char* what, Tally& t, Work work) {
  const double seconds = load_seconds();
  Growth rss;
  run_threads(kThreads, seconds, work, [&] { rss.sample(resident_bytes()); });
  const double mib = 1024.0 * 1024.0;
  const size_t margin = std::max<size_t>(size_t(8) << 20, rss.at_warm / 20);
  std::printf("[load] %s: %.1f s, %ld runs (%.0f/s), %ld contexts, %ld engines; resident %.1f MiB after warm-up, "
              "peak %.1f MiB after it (margin %.1f MiB)\n",
              what, seconds, t.runs.load(), t.runs.load() / seconds, t.contexts.load(), t.engines.load(),
              rss.at_warm / mib, rss.peak / mib, margin / mib);
  EXPECT_EQ(t.failures.load(), 0) << t.first_problem;
  EXPECT_EQ(t.mismatches.load(), 0) << t.first_problem;
  EXPECT_GT(t.runs.load(), kThreads) << "the threads hardly ran";
  if (kSanitized) {
    std::printf("[load] (sanitizer build: resident memory not checked)\n");
  } else {
    EXPECT_LE(rss.peak, rss.at_warm + margin) << "resident memory grew after warm-up from " << rss.at_warm / mib
                                              << " MiB to " << rss.peak / mib << " MiB";
  }
}

class ContextLoad : public LoadTest {
 protected:
  void SetUp() override {
    plan_ = build(log_);
    ASSERT_FALSE(plan_.empty()) << log_.first();
    Runtime rt(log_);
    engine_ = rt.deserialize(plan_.data(), plan_.size());
    ASSERT_TRUE(engine_) << log_.first();
    cases_ = make_cases();
    // The reference: one context on this thread; run twice, it must agree with itself.
    auto ctx = engine_->createExecutionContext();
    std::vector<float> again;
    std::string error;
    for (auto& c : cases_) {
      ASSERT_TRUE(run(*ctx, c, c.want, &error)) << error << ": " << log_.first();
      ASSERT_TRUE(run(*ctx, c, again, &error)) << error << ": " << log_.first();
      ASSERT_EQ(std::memcmp(again.data(), c.want.data(), again.size() * sizeof(float)), 0) << "not deterministic";
    }
  }
  std::vector<Case> cases_;
};

TEST_F(ContextLoad, EightThreadsOneContextEach) {
  Tally t;
  under_load("8 threads x 1 context", t, [&](int thread, Clock::time_point deadline) {
    std::vector<float> y;
    one_context_each(*engine_, t, thread, deadline, kCases,
                     [&](ExecutionContext& ctx, int index) { run_and_check(ctx, cases_[index], index, t, y); });
  });
  EXPECT_EQ(log_.count(), 0u) << log_.first();
}

// Thread 0 also loads a fresh engine from the same bytes each round (and drops it).
TEST_F(ContextLoad, ContextsCreatedAndDestroyedRepeatedly) {
  Tally t;
  under_load("8 threads, contexts created and destroyed", t, [&](int thread, Clock::time_point deadline) {
    std::vector<float> y;
    auto fresh = [&] { return Runtime(log_).deserialize(plan_.data(), plan_.size()); };
    contexts_come_and_go(
        *engine_, t, thread, deadline, kCases,
        [&](ExecutionContext& ctx, int index) { run_and_check(ctx, cases_[index], index, t, y); },
        thread == 0 ? std::function<std::unique_ptr<Engine>()>(fresh) : nullptr);
  });
  EXPECT_EQ(log_.count(), 0u) << log_.first();
}

}  // namespace
}  // namespace kiln
