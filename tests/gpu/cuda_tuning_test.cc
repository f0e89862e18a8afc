// Tactic timing on the GPU (issue 15; src/backends/cuda/cuda_tuning.cc), written before it could
// run: CUDA tuning is used only with an explicit builder optimization level until these pass on
// the H100. A float32 Conv + Relu + MatMul model: its selecting layers list several candidates
// (cuDNN algorithms, cuBLASLt heuristic top-N); two cold builds pick the same tactics; a build on
// the first one's timing cache times nothing and picks alike; the tuned engine matches the CPU;
// a build without an explicit level keeps today's heuristic picks (no layer tuned). Real GPU
// (label gpu); skips without one.
#include <random>

#include "onnx/onnx_pb.h"
#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

constexpr int64_t kN = 4, kC = 32, kH = 28, kM = 64;

// y = Relu(Conv3x3(x) + b); q = y [N, C, H, H] times m [H, kM].
std::string model() {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> w(kC * kC * 9), b(kC), m(kH * kM);
  for (float& v : w) v = nd(rng) / 17.f;
  for (float& v : b) v = 0.1f * nd(rng);
  for (float& v : m) v = nd(rng) / 5.f;
  onnx::ModelProto mp;
  mp.set_ir_version(10);
  mp.add_opset_import()->set_version(17);
  auto* g = mp.mutable_graph();
  add_float_input(g, "x", {kN, kC, kH, kH});
  test::add_float_initializer(g, "w", {kC, kC, 3, 3}, w);
  test::add_float_initializer(g, "b", {kC}, b);
  test::add_float_initializer(g, "m", {kH, kM}, m);
  add_ints(add_node(g, "Conv", {"x", "w", "b"}, "c"), "pads", {1, 1, 1, 1});
  add_node(g, "Relu", {"c"}, "y");
  add_node(g, "MatMul", {"y", "m"}, "q");
  g->add_output()->set_name("q");
  return mp.SerializeAsString();
}

struct AllLog : Logger {
  std::vector<std::string> lines;
  std::string last;
  void log(Severity s, const char* m) noexcept override {
    lines.push_back(m);
    if (s <= Severity::kERROR) last = m;
  }
  std::string find(const std::string& part) const {
    for (const auto& l : lines) if (l.find(part) != std::string::npos) return l;
    return "";
  }
};

std::vector<uint8_t> build(const std::string& bytes, AllLog& log, std::shared_ptr<TimingCache> cache, bool tune = true) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parse(bytes.data(), bytes.size())) << log.last;
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(BackendKind::kCUDA);
  if (tune) cfg->setBuilderOptimizationLevel(3);
  if (cache) cfg->setTimingCache(cache);
  return b.buildSerializedNetwork(*net, *cfg);
}

std::vector<LayerInfo> layers(const std::vector<uint8_t>& plan) {
  AllLog log;
  auto e = Runtime(log).deserialize(plan.data(), plan.size());
  std::vector<LayerInfo> out;
  for (int i = 0; e && i < e->getNbLayers(); ++i) out.push_back(e->getLayerInformation(i));
  return out;
}

std::vector<std::string> tactics(const std::vector<uint8_t>& plan) {
  std::vector<std::string> t;
  for (const auto& l : layers(plan)) t.push_back(l.op_type + " " + l.tactic);
  return t;
}

std::vector<float> run(const std::vector<uint8_t>& plan, const std::vector<float>& x, size_t nq) {
  AllLog log;
  auto e = Runtime(log).deserialize(plan.data(), plan.size());
  if (!e) { ADD_FAILURE() << log.last; return {}; }
  auto ctx = e->createExecutionContext();
  void *dx = nullptr, *dq = nullptr;
  cudaMalloc(&dx, x.size() * 4);
  cudaMalloc(&dq, nq * 4);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  ctx->setTensorAddress("x", dx);
  ctx->setTensorAddress("q", dq);
  EXPECT_TRUE(ctx->execute()) << log.last;
  cudaDeviceSynchronize();
  std::vector<float> q(nq);
  cudaMemcpy(q.data(), dq, nq * 4, cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dq);
  return q;
}

TEST(CudaTuning, ColdBuildsAgreeWarmCacheTimesNothingAndTheEngineMatchesTheCpu) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  const std::string bytes = model();
  AllLog log1, log2, log3;
  auto cache1 = std::make_shared<TimingCache>(), cache2 = std::make_shared<TimingCache>();
  auto cold1 = build(bytes, log1, cache1), cold2 = build(bytes, log2, cache2);
  ASSERT_FALSE(cold1.empty()) << log1.last;
  ASSERT_FALSE(cold2.empty()) << log2.last;
  int tuned = 0;
  for (const auto& l : layers(cold1)) {
    std::printf("  %s %s: %d candidates, %.4f ms; runner-up %s %.4f ms\n", l.op_type.c_str(), l.tactic.c_str(),
                l.tactic_candidates, l.tactic_ms, l.runner_up.c_str(), l.runner_up_ms);
    if (l.tactic_candidates >= 2) {
      ++tuned;
      EXPECT_GT(l.tactic_ms, 0);
      EXPECT_GT(l.runner_up_ms, 0);
    }
  }
  EXPECT_GE(tuned, 2) << "the Conv (cuDNN) and the MatMul (cuBLASLt) have several candidates";
  std::printf("  %s\n", log1.find("tactic timing").c_str());
  EXPECT_EQ(tactics(cold1), tactics(cold2)) << "two cold builds on one GPU pick the same tactics";
  auto warm = build(bytes, log3, cache1);
  ASSERT_FALSE(warm.empty()) << log3.last;
  EXPECT_NE(log3.find("timed 0 of"), "") << log3.find("tactic timing");
  EXPECT_EQ(tactics(warm), tactics(cold1));

  std::mt19937 rng(6);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(kN * kC * kH * kH));
  for (float& v : x) v = nd(rng);
  const size_t nq = size_t(kN * kC * kH * kM);
  auto want = run_model(bytes, BackendKind::kCPU, {{"x", {kN, kC, kH, kH}, &x}}, {{"q", nq}});
  EXPECT_LT(rel_l2(run(cold1, x, nq), want), 1e-2);  // TF32
}

TEST(CudaTuning, WithoutAnExplicitLevelTheHeuristicPicksStay) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  AllLog log;
  auto plan = build(model(), log, nullptr, /*tune=*/false);
  ASSERT_FALSE(plan.empty()) << log.last;
  for (const auto& l : layers(plan)) EXPECT_EQ(l.tactic_candidates, 0) << l.op_type << " " << l.tactic;
  EXPECT_EQ(log.find("tactic timing"), "");
}

}  // namespace
}  // namespace kiln
