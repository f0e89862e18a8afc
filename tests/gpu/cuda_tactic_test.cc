// Tactics pick their algorithm at build time and the engine records it (kernels/conv_nhwc.cu,
// conv.cu, matmul.cu): a float16 batch-32 convolution (channels-last, cuDNN timed by cudnnFind at
// build) and a MatMul get ids that name the algorithm; loading the engine keeps every id; the
// loaded engine runs and matches the CPU; its first execute makes plans only (no timing: the
// test prints first and second execute times); a recorded algorithm this build does not know, or
// an engine built with other cuDNN/cuBLASLt versions, is one error saying to rebuild. Real GPU
// (label gpu); skips without one.
#include <chrono>
#include <random>

#include "engine/engine_file.h"
#include "onnx/onnx_pb.h"
#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

constexpr int64_t kN = 32, kC = 64, kH = 28;

// y = Relu(Conv3x3(x) + b); q = y reshaped to [N*C*H, W] times m [W, 16].
std::string model() {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> w(kC * kC * 9), b(kC), m(kH * 16);
  for (float& v : w) v = nd(rng) / 24.f;
  for (float& v : b) v = 0.1f * nd(rng);
  for (float& v : m) v = nd(rng) / 5.f;
  onnx::ModelProto mp;
  mp.set_ir_version(10);
  mp.add_opset_import()->set_version(17);
  auto* g = mp.mutable_graph();
  add_float_input(g, "x", {kN, kC, kH, kH});
  add_float_initializer(g, "w", {kC, kC, 3, 3}, w);
  add_float_initializer(g, "b", {kC}, b);
  add_float_initializer(g, "m", {kH, 16}, m);
  add_ints(add_node(g, "Conv", {"x", "w", "b"}, "c"), "pads", {1, 1, 1, 1});
  add_node(g, "Relu", {"c"}, "y");
  add_node(g, "MatMul", {"y", "m"}, "q");
  g->add_output()->set_name("q");
  return mp.SerializeAsString();
}

std::vector<uint8_t> build(const std::string& bytes, Log& log) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parse(bytes.data(), bytes.size())) << log.last;
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(BackendKind::kCUDA);
  cfg->setFlag(BuilderFlag::kFP16);
  return b.buildSerializedNetwork(*net, *cfg);
}

std::vector<std::string> tactics(const Engine& e) {
  std::vector<std::string> t;
  for (int i = 0; i < e.getNbLayers(); ++i) t.push_back(e.getLayerInformation(i).op_type + " " + e.getLayerInformation(i).tactic);
  return t;
}

// The engine bytes with its header changed by `edit` (through the engine file's own reader/writer).
template <class Edit>
std::vector<uint8_t> edited(const std::vector<uint8_t>& plan, Edit edit) {
  auto copy = std::shared_ptr<std::byte[]>(new std::byte[plan.size()]);
  std::memcpy(copy.get(), plan.data(), plan.size());
  auto m = engine::deserialize(std::shared_ptr<const std::byte>(copy, copy.get()), plan.size());
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  edit(*m);
  auto s = engine::serialize(*m);
  EXPECT_TRUE(s.is_ok());
  return std::vector<uint8_t>(s->begin(), s->end());
}

TEST(CudaTactics, BuildRecordsTheAlgorithmAndLoadingKeepsIt) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  Log log;
  const std::string bytes = model();
  auto plan = build(bytes, log);
  ASSERT_FALSE(plan.empty()) << log.last;
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  ASSERT_TRUE(e) << log.last;
  bool conv = false, gemm = false;
  for (const std::string& t : tactics(*e)) {
    std::printf("  layer %s\n", t.c_str());
    conv = conv || t.rfind("kiln.ConvAct cuda.conv.cudnn.", 0) == 0;
    gemm = gemm || t.rfind("MatMul cuda.gemm.cublaslt.algo=", 0) == 0;
  }
  EXPECT_TRUE(conv) << "the convolution's tactic names its cuDNN algorithm";
  EXPECT_TRUE(gemm) << "the MatMul's tactic names its cuBLASLt algorithm";
  auto again = rt.deserialize(plan.data(), plan.size());
  ASSERT_TRUE(again);
  EXPECT_EQ(tactics(*again), tactics(*e));

  // Runs, against the CPU, timing the first execute (plans from the recorded ids) and the second.
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(kN * kC * kH * kH));
  for (float& v : x) v = nd(rng);
  const size_t nq = size_t(kN * kC * kH * 16);
  auto want = run_model(bytes, BackendKind::kCPU, {{"x", {kN, kC, kH, kH}, &x}}, {{"q", nq}});
  auto ctx = again->createExecutionContext();
  void *dx = nullptr, *dq = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dq, nq * 4), cudaSuccess);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  ctx->setTensorAddress("x", dx);
  ctx->setTensorAddress("q", dq);
  double ms[3];
  for (double& t : ms) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(ctx->execute()) << log.last;
    cudaDeviceSynchronize();
    t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::printf("  loaded engine: first execute %.2f ms, second %.2f ms, third %.2f ms\n", ms[0], ms[1], ms[2]);
  std::vector<float> got(nq);
  cudaMemcpy(got.data(), dq, nq * 4, cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dq);
  EXPECT_LT(rel_l2(got, want), 1e-2);
}

TEST(CudaTactics, AnUnknownRecordedAlgorithmIsOneErrorToRebuild) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  Log log;
  auto plan = build(model(), log);
  ASSERT_FALSE(plan.empty()) << log.last;
  auto bad = edited(plan, [](engine::EngineModel& m) {
    for (auto& t : m.tactics)
      if (t.rfind("cuda.conv.cudnn.", 0) == 0) t = "cuda.conv.cudnn.no_such_algo.tensor_op";
  });
  Runtime rt(log);
  auto e = rt.deserialize(bad.data(), bad.size());
  ASSERT_TRUE(e) << log.last;
  auto ctx = e->createExecutionContext();
  ASSERT_TRUE(ctx);
  void *dx = nullptr, *dq = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, size_t(kN * kC * kH * kH) * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dq, size_t(kN * kC * kH * 16) * 4), cudaSuccess);
  ctx->setTensorAddress("x", dx);
  ctx->setTensorAddress("q", dq);
  EXPECT_FALSE(ctx->execute());
  EXPECT_NE(log.last.find("no_such_algo"), std::string::npos) << log.last;
  EXPECT_NE(log.last.find("rebuild the engine"), std::string::npos) << log.last;
  cudaFree(dx);
  cudaFree(dq);
}

TEST(CudaTactics, OtherLibraryVersionsAreRefusedAtLoad) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  Log log;
  auto plan = build(model(), log);
  ASSERT_FALSE(plan.empty()) << log.last;
  auto other = edited(plan, [](engine::EngineModel& m) { m.device_libraries = "cuDNN 90000, cuBLASLt 120000"; });
  Runtime rt(log);
  EXPECT_FALSE(rt.deserialize(other.data(), other.size()));
  EXPECT_NE(log.last.find("cuDNN 90000"), std::string::npos) << log.last;
  EXPECT_NE(log.last.find("rebuild the engine"), std::string::npos) << log.last;
}

}  // namespace
}  // namespace kiln
