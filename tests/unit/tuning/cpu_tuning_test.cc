// Tuning through the public API on the CPU backend (src/backends/cpu/cpu_tactics.h): the
// GEMM-based layers have two tactics (OpenBLAS, kiln's loops), both compute the same result; a
// shared TimingCache makes the second build time nothing and pick alike; level 0 times nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/unit/test_models.h"

namespace kiln::test {
namespace {

constexpr int64_t kC = 3, kH = 12, kW = 12, kF = 8, kClasses = 10, kBatch = 2;

struct AllLogger : Logger {
  std::vector<std::string> lines;
  std::mutex mu;
  void log(Severity, const char* m) noexcept override {
    std::lock_guard<std::mutex> l(mu);
    lines.push_back(m);
  }
  std::string find(const std::string& part) {
    std::lock_guard<std::mutex> l(mu);
    for (const auto& s : lines) if (contains(s, part)) return s;
    return "";
  }
};

std::vector<uint8_t> build(Logger& log, const std::function<void(BuilderConfig&)>& configure) {
  const std::string onnx = small_cnn(kC, kH, kW, kF, kClasses);
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parse(onnx.data(), onnx.size()));
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(BackendKind::kCPU);
  OptimizationProfile prof;
  for (auto sel : {OptProfileSelector::kMIN, OptProfileSelector::kOPT, OptProfileSelector::kMAX})
    prof.setDimensions("x", sel, {kBatch, kC, kH, kW});
  EXPECT_EQ(cfg->addOptimizationProfile(prof), 0);
  configure(*cfg);
  return b.buildSerializedNetwork(*net, *cfg);
}

std::vector<std::string> tactics(Logger& log, const std::vector<uint8_t>& plan) {
  auto e = Runtime(log).deserialize(plan.data(), plan.size());
  std::vector<std::string> t;
  for (int i = 0; e && i < e->getNbLayers(); ++i) t.push_back(e->getLayerInformation(i).tactic);
  return t;
}

std::vector<float> run(Logger& log, const std::vector<uint8_t>& plan, const std::vector<float>& x) {
  auto e = Runtime(log).deserialize(plan.data(), plan.size());
  EXPECT_TRUE(e);
  if (!e) return {};
  auto ctx = e->createExecutionContext();
  std::vector<float> y(kBatch * kClasses, -1.f);
  EXPECT_TRUE(ctx->setInputShape("x", {kBatch, kC, kH, kW}));
  EXPECT_TRUE(ctx->setTensorAddress("x", const_cast<float*>(x.data())));
  EXPECT_TRUE(ctx->setTensorAddress("y", y.data()));
  EXPECT_TRUE(ctx->execute());
  return y;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * double(a[i] - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

std::vector<float> random_input() {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(kBatch * kC * kH * kW);
  for (float& v : x) v = u(rng);
  return x;
}

TEST(CpuTuning, LoopsAndBlasTacticsComputeTheSameEngine) {
  AllLogger log;
  const uint32_t no_blas = kAllTacticSources & ~(1u << int(TacticSource::kOPENBLAS));
  const uint32_t no_loops = kAllTacticSources & ~(1u << int(TacticSource::kCPU_LOOPS));
  auto loops = build(log, [&](BuilderConfig& c) { c.setTacticSources(no_blas); });
  auto blas = build(log, [&](BuilderConfig& c) { c.setTacticSources(no_loops); });
  ASSERT_FALSE(loops.empty());
  ASSERT_FALSE(blas.empty());
  auto tl = tactics(log, loops), tb = tactics(log, blas);
  int with_loops = 0;
  for (const auto& t : tl) with_loops += contains(t, ".loops");
  EXPECT_GE(with_loops, 3) << "ConvAct x2 and MatMulBias have the loops candidate";
  for (const auto& t : tb) EXPECT_FALSE(contains(t, ".loops")) << t;
  const auto x = random_input();
  auto yl = run(log, loops, x), yb = run(log, blas, x);
  ASSERT_EQ(yl.size(), yb.size());
  EXPECT_LT(rel_l2(yl, yb), 1e-5);
}

TEST(CpuTuning, SharedCacheMakesTheSecondBuildTimeNothing) {
  AllLogger cold_log, warm_log;
  Builder probe(cold_log);
  auto cache = probe.createBuilderConfig()->createTimingCache(nullptr, 0);
  ASSERT_TRUE(cache);
  auto cold = build(cold_log, [&](BuilderConfig& c) { c.setTimingCache(cache); });
  ASSERT_FALSE(cold.empty());
  const std::string timed = cold_log.find("tactic timing: timed");
  EXPECT_TRUE(contains(timed, "timed 3 of 3 layers")) << timed;
  EXPECT_EQ(cache->size(), 6u);  // two tactics of three layers
  auto warm = build(warm_log, [&](BuilderConfig& c) { c.setTimingCache(cache); });
  EXPECT_TRUE(contains(warm_log.find("tactic timing: timed"), "timed 0 of 3 layers")) << warm_log.find("tactic timing");
  EXPECT_EQ(tactics(warm_log, warm), tactics(cold_log, cold));
  // The cache's bytes read back as an equal cache.
  auto bytes = cache->serialize();
  std::string error;
  auto again = probe.createBuilderConfig()->createTimingCache(bytes.data(), bytes.size(), &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->size(), 6u);
  EXPECT_FALSE(probe.createBuilderConfig()->createTimingCache("junk\n", 5, &error));
  EXPECT_TRUE(contains(error, "not a kiln timing cache")) << error;
}

TEST(CpuTuning, LevelZeroAndDisabledCacheTimeNothing) {
  AllLogger log;
  auto cache = Builder(log).createBuilderConfig()->createTimingCache(nullptr, 0);
  auto plan = build(log, [&](BuilderConfig& c) {
    c.setTimingCache(cache);
    c.setFlag(BuilderFlag::kDISABLE_TIMING_CACHE);
  });
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(cache->size(), 0u);  // neither read nor written
  AllLogger log0;
  plan = build(log0, [&](BuilderConfig& c) { c.setBuilderOptimizationLevel(0); });
  ASSERT_FALSE(plan.empty());
  EXPECT_NE(log0.find("no tactic timing"), "");
  for (const auto& t : tactics(log0, plan)) EXPECT_FALSE(contains(t, ".loops")) << t;
}

}  // namespace
}  // namespace kiln::test
