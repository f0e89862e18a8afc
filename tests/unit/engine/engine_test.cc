// Engines through the public API: build -> serialize -> load -> run, dynamic shapes within and
// outside the profile, several contexts on one engine, and corrupted or truncated engine files.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "backends/cpu/executor.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "tests/unit/test_models.h"

namespace kiln {
namespace {

using test::CaptureLogger;

// y[batch] = ReduceSum(Relu(x[batch,4] * w[4]), axes=[1], keepdims=0)
std::string dynamic_model() {
  test::ModelBuilder m;
  m.add_input("x", {"batch", 4}).add_output("y");
  m.add_initializer("w", {4}, {0.5f, -1.f, 2.f, 1.5f});
  m.add_int64_initializer("axes", {1}, {1});
  m.add_node("Mul", {"x", "w"}, "xw", {}, "Mul_0");
  m.add_node("Relu", {"xw"}, "r", {}, "Relu_0");
  m.add_node("ReduceSum", {"r", "axes"}, "y", {{"keepdims", 0}}, "ReduceSum_0");
  return m.bytes();
}

std::vector<uint8_t> build_engine(CaptureLogger& log, Dims min = {1, 4}, Dims opt = {2, 4}, Dims max = {8, 4}) {
  return test::build_engine(log, dynamic_model(), BackendKind::kCPU, min, opt, max);
}

std::vector<float> run(ExecutionContext& ctx, std::vector<float> x) {
  int64_t batch = static_cast<int64_t>(x.size() / 4);
  EXPECT_TRUE(ctx.setInputShape("x", {batch, 4}));
  EXPECT_EQ(ctx.getTensorShape("y"), (Dims{batch}));
  std::vector<float> y(batch, -99.f);
  ctx.setTensorAddress("x", x.data());
  ctx.setTensorAddress("y", y.data());
  EXPECT_TRUE(ctx.execute());
  return y;
}

std::vector<float> random_input(int64_t batch, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(batch * 4);
  for (float& v : x) v = u(rng);
  return x;
}

std::vector<float> reference(const std::vector<float>& x) {
  const float w[4] = {0.5f, -1.f, 2.f, 1.5f};
  std::vector<float> y(x.size() / 4, 0.f);
  for (size_t i = 0; i < x.size(); ++i) y[i / 4] += std::max(0.f, x[i] * w[i % 4]);
  return y;
}

TEST(Engine, BuildSaveLoadRunMatchesReference) {
  CaptureLogger log;
  auto bytes = build_engine(log);
  ASSERT_FALSE(bytes.empty()) << log.last();
  Runtime runtime(log);
  auto engine = runtime.deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(engine) << log.last();
  EXPECT_EQ(engine->getNbIOTensors(), 2);
  EXPECT_EQ(engine->getIOTensorName(0), "x");
  EXPECT_EQ(engine->getTensorIOMode("x"), TensorIOMode::kINPUT);
  EXPECT_EQ(engine->getTensorIOMode("y"), TensorIOMode::kOUTPUT);
  EXPECT_EQ(engine->getTensorDataType("y"), TensorType::kFLOAT);
  EXPECT_EQ(engine->getTensorShape("x"), (Dims{-1, 4}));
  EXPECT_EQ(engine->getProfileShape("x", 0, OptProfileSelector::kMAX), (Dims{8, 4}));
  EXPECT_EQ(engine->getNbLayers(), 3);
  EXPECT_EQ(engine->getLayerInformation(1).tactic, "cpu.reference.Relu");
  EXPECT_GT(engine->getDeviceMemorySize(), 0u);
  auto ctx = engine->createExecutionContext();
  for (int64_t batch : {1, 3, 8}) {
    auto x = random_input(batch, static_cast<unsigned>(batch));
    auto y = run(*ctx, x), want = reference(x);
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-5f) << "batch " << batch;
  }
}

TEST(Engine, SavedEngineGivesBitIdenticalOutputs) {
  CaptureLogger log;
  auto bytes = build_engine(log);
  std::string path = ::testing::TempDir() + "/kiln_engine_test.engine";
  { std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }
  Runtime runtime(log);
  auto from_file = runtime.deserializeFromFile(path);
  ASSERT_TRUE(from_file) << log.last();
  auto ctx = from_file->createExecutionContext();
  auto x = random_input(5, 7);
  auto y = run(*ctx, x);

  // The same inputs straight through the importer and the CPU executor, no engine involved.
  std::string model = dynamic_model();
  auto g = onnx_import::import_bytes(model, "");
  ASSERT_TRUE(g.is_ok());
  auto ex = cpu::Executor::create(**g);
  auto direct = (*ex)->run({{"x", Tensor::from_vector<float>({5, 4}, x)}});
  ASSERT_TRUE(direct.is_ok()) << direct.status().message();
  ASSERT_EQ(0, std::memcmp(y.data(), (*direct)[0].data<float>(), y.size() * sizeof(float)));
  std::remove(path.c_str());
}

TEST(Engine, ShapeOutsideProfileIsRefusedWithTheRange) {
  CaptureLogger log;
  auto bytes = build_engine(log);
  Runtime runtime(log);
  auto engine = runtime.deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(engine);
  auto ctx = engine->createExecutionContext();
  EXPECT_FALSE(ctx->setInputShape("x", {9, 4}));
  EXPECT_NE(log.last().find("min 1x4, max 8x4"), std::string::npos) << log.last();
  EXPECT_FALSE(ctx->setInputShape("nope", {1, 4}));
  EXPECT_NE(log.last().find("'nope' is not an input"), std::string::npos) << log.last();
}

TEST(Engine, DynamicInputWithoutProfileIsAnErrorNamingTheInput) {
  CaptureLogger log;
  Builder builder(log);
  auto network = builder.createNetwork();
  OnnxParser parser(*network, log);
  std::string bytes = dynamic_model();
  ASSERT_TRUE(parser.parse(bytes.data(), bytes.size()));
  auto config = builder.createBuilderConfig();
  EXPECT_TRUE(builder.buildSerializedNetwork(*network, *config).empty());
  EXPECT_NE(log.last().find("input 'x' has dynamic shape [batch,4]"), std::string::npos) << log.last();
}

TEST(Engine, ContextsRunConcurrentlyOnOneEngine) {
  CaptureLogger log;
  auto bytes = build_engine(log);
  Runtime runtime(log);
  auto engine = runtime.deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(engine);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto ctx = engine->createExecutionContext();
      for (int it = 0; it < 20; ++it) {
        auto x = random_input(1 + (t + it) % 8, t * 100 + it);
        auto y = run(*ctx, x), want = reference(x);
        bool same = true;
        for (size_t i = 0; i < y.size(); ++i) same = same && std::fabs(y[i] - want[i]) < 1e-5f;
        ok[t] += same;
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 20);
}

TEST(EngineBadInput, EveryTruncationAndByteFlipIsRefusedCleanly) {
  CaptureLogger log;
  auto bytes = build_engine(log);
  Runtime runtime(log);
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    EXPECT_FALSE(runtime.deserialize(bytes.data(), cut)) << "truncated at " << cut;
  }
  for (size_t pos = 0; pos < bytes.size(); pos += 3) {
    auto b = bytes;
    b[pos] ^= 0x41;
    EXPECT_FALSE(runtime.deserialize(b.data(), b.size())) << "flipped byte " << pos << " was accepted";
  }
  EXPECT_NE(log.last().find("rebuild the engine"), std::string::npos) << log.last();
}

TEST(EngineBadInput, WrongFormatVersionNamesBothVersions) {
  CaptureLogger log;
  auto bytes = build_engine(log);
  bytes[8] = 77;
  Runtime runtime(log);
  EXPECT_FALSE(runtime.deserialize(bytes.data(), bytes.size()));
  EXPECT_NE(log.last().find("engine format version 77"), std::string::npos) << log.last();
  EXPECT_FALSE(runtime.deserializeFromFile("/nonexistent/x.engine"));
  EXPECT_NE(log.last().find("/nonexistent/x.engine"), std::string::npos) << log.last();
}

}  // namespace
}  // namespace kiln
