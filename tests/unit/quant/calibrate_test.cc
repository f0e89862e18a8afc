// INT8 calibration through the public Builder: scales from data (each algorithm reaches the
// cache), a cache used without calibrating (TensorRT's text), and the bad inputs: a cache of
// another model, a calibrator that fills fewer inputs than the network has, a data source error.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "engine/engine_file.h"
#include "quant/calibration_cache.h"
#include "tests/unit/test_models.h"

namespace kiln::test {
namespace {

// Hands out `batches` (batch -> input -> floats); fills the first `fill` inputs only (-1: all).
struct VectorCalibrator : Int8Calibrator {
  std::vector<std::vector<std::vector<float>>> batches;
  int fill = -1;
  std::string cache_in, cache_out, error;
  int calls = 0;
  size_t next = 0;
  CalibrationAlgoType algo = CalibrationAlgoType::kMINMAX_CALIBRATION;
  int getBatchSize() const noexcept override { return 1; }
  bool getBatch(void* bindings[], const char*[], int n) noexcept override {
    ++calls;
    if (!error.empty() && next == 1) return false;
    if (next >= batches.size()) return false;
    auto& b = batches[next++];
    for (int i = 0; i < n && (fill < 0 || i < fill); ++i) bindings[i] = b[i].data();
    return true;
  }
  const void* readCalibrationCache(size_t& length) noexcept override {
    length = cache_in.size();
    return cache_in.empty() ? nullptr : cache_in.data();
  }
  void writeCalibrationCache(const void* p, size_t n) noexcept override { cache_out.assign(static_cast<const char*>(p), n); }
  CalibrationAlgoType getAlgorithm() noexcept override { return algo; }
  const char* getLastError() const noexcept override { return error.empty() || next < 1 ? nullptr : error.c_str(); }
  const char* getCacheSource() const noexcept override { return "test.cache"; }
};

// x [1,2,2,2] -> Conv (2 filters 1x1, weights per channel 0.5 / -2 max) -> c -> Relu -> y
std::string conv_relu_model() {
  ModelBuilder m;
  m.add_input("x", {1, 2, 2, 2}).add_output("y");
  m.add_initializer("w", {2, 2, 1, 1}, {0.5f, -0.25f, 1.f, -2.f});
  m.add_node("Conv", {"x", "w"}, "c");
  m.add_node("Relu", {"c"}, "y");
  return m.bytes();
}

std::vector<uint8_t> build_int8(CaptureLogger& log, const std::string& model, Int8Calibrator* c) {
  return build_engine(log, model, BackendKind::kCPU, {}, {}, {}, [&](BuilderConfig& cfg) {
    cfg.setFlag(BuilderFlag::kINT8);
    cfg.setInt8Calibrator(c);
  });
}

engine::EngineModel load(const std::vector<uint8_t>& bytes) {
  auto copy = std::shared_ptr<std::byte>(new std::byte[bytes.size()], std::default_delete<std::byte[]>());
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  auto m = engine::deserialize(copy, bytes.size());
  EXPECT_TRUE(m) << m.status().message();
  return std::move(m).value();
}

float scale_of(const engine::EngineModel& m, const std::string& name) {
  for (const auto& s : m.int8_activation_scales)
    if (s.name == name) return s.scales.at(0);
  ADD_FAILURE() << "no scale for " << name;
  return -1;
}

TEST(Calibrate, MinMaxScalesGoToTheCacheAndTheEngine) {
  CaptureLogger log;
  VectorCalibrator c;
  c.batches = {{{1, -3, 0.5f, 2, 0, 0, 0, 0}}, {{-0.5f, 6, 0, 0, 1, 1, 1, 1}}};
  auto bytes = build_int8(log, conv_relu_model(), &c);
  ASSERT_FALSE(bytes.empty()) << log.all();
  EXPECT_EQ(c.calls, 3);  // two batches, then the end
  auto cache = quant::parse_calibration_cache(c.cache_out, "written");
  ASSERT_TRUE(cache) << cache.status().message();
  EXPECT_EQ(cache->algorithm, "MinMaxCalibration");
  ASSERT_EQ(cache->scales.size(), 3u);  // x, c, y
  EXPECT_EQ(cache->scales[0].first, "x");
  EXPECT_FLOAT_EQ(cache->scales[0].second, 6.f / 127);
  // c = 0.5 x0 - 0.25 x1 (channel 0), x0 - 2 x1 (channel 1); |c| max over both batches:
  // batch 2, pixel 1: x0 = 6, x1 = 1 -> c1 = 6 - 2 = 4; pixel 0: x0 = -0.5, x1 = 1 -> c1 = -2.5;
  // batch 1, pixel 1: x0 = -3, x1 = 0 -> c1 = -3; pixel 0: x0 = 1, x1 = 0 -> 1.
  EXPECT_FLOAT_EQ(cache->scales[1].second, 4.f / 127);
  EXPECT_FLOAT_EQ(cache->scales[2].second, 4.f / 127);  // Relu keeps the positive maximum
  engine::EngineModel m = load(bytes);
  EXPECT_TRUE(m.options.int8);
  EXPECT_EQ(m.int8_calibration, "calibrated");
  EXPECT_FLOAT_EQ(scale_of(m, "x"), 6.f / 127);
  ASSERT_EQ(m.int8_weight_scales.size(), 1u);  // per output channel of w: 0.5 and 2
  EXPECT_EQ(m.int8_weight_scales[0].name, "w");
  EXPECT_EQ(m.int8_weight_scales[0].axis, 0);
  ASSERT_EQ(m.int8_weight_scales[0].scales.size(), 2u);
  EXPECT_FLOAT_EQ(m.int8_weight_scales[0].scales[0], 0.5f / 127);
  EXPECT_FLOAT_EQ(m.int8_weight_scales[0].scales[1], 2.f / 127);
  // No INT8 kernels: the CPU engine simulates the Conv in INT8 (its input and weights through
  // quantize-dequantize), the layers compute in float32.
  int simulated = 0;
  for (const auto& p : m.precisions) simulated += p == "float (INT8 simulated: quantized input and weights)";
  EXPECT_EQ(simulated, 1);
  EXPECT_EQ(m.precisions.size(), 3u);  // QuantizeLinear, DequantizeLinear, the fused Conv + Relu
}

TEST(Calibrate, ATensorRtCacheIsUsedWithoutCalibrating) {
  CaptureLogger log;
  VectorCalibrator c;
  c.batches = {{{1, 1, 1, 1, 1, 1, 1, 1}}};
  c.cache_in = "TRT-8601-EntropyCalibration2\nx: 3c010a14\nc: 3d8d7e4f\ny: 3d8d7e4f\n";
  auto bytes = build_int8(log, conv_relu_model(), &c);
  ASSERT_FALSE(bytes.empty()) << log.all();
  EXPECT_EQ(c.calls, 0);
  EXPECT_TRUE(c.cache_out.empty());
  engine::EngineModel m = load(bytes);
  EXPECT_EQ(m.int8_calibration, "cache");
  EXPECT_FLOAT_EQ(scale_of(m, "x"), 0.007875938f);
}

TEST(Calibrate, ACacheOfAnotherModelIsAnError) {
  CaptureLogger log;
  VectorCalibrator c;
  c.cache_in = "TRT-8601-EntropyCalibration2\ninput.1: 3c010a14\n(Unnamed Layer* 0) [Convolution]_output: 3d8d7e4f\n";
  EXPECT_TRUE(build_int8(log, conv_relu_model(), &c).empty());
  EXPECT_TRUE(contains(log.all(), "test.cache: the calibration cache names none of the network's tensors")) << log.all();
  EXPECT_TRUE(contains(log.all(), "'input.1'")) << log.all();
}

TEST(Calibrate, AMalformedCacheNamesTheLine) {
  CaptureLogger log;
  VectorCalibrator c;
  c.cache_in = "TRT-8601-EntropyCalibration2\nx: zz\n";
  EXPECT_TRUE(build_int8(log, conv_relu_model(), &c).empty());
  EXPECT_TRUE(contains(log.all(), "test.cache:2: tensor 'x'")) << log.all();
}

TEST(Calibrate, FewerInputsThanTheNetworkIsAnError) {
  ModelBuilder mb;
  mb.add_input("a", {2}).add_input("b", {2}).add_output("s");
  mb.add_node("Add", {"a", "b"}, "s");
  CaptureLogger log;
  VectorCalibrator c;
  c.batches = {{{1, 2}, {3, 4}}};
  c.fill = 1;
  EXPECT_TRUE(build_int8(log, mb.bytes(), &c).empty());
  EXPECT_TRUE(contains(log.all(), "the calibrator gave no data for input 'b' (2 inputs")) << log.all();
  EXPECT_TRUE(c.cache_out.empty());
}

TEST(Calibrate, NoBatchAndSourceErrorsAreErrors) {
  CaptureLogger log;
  VectorCalibrator empty;
  EXPECT_TRUE(build_int8(log, conv_relu_model(), &empty).empty());
  EXPECT_TRUE(contains(log.all(), "the calibrator gave no batch")) << log.all();
  CaptureLogger log2;
  VectorCalibrator broken;
  broken.batches = {{{1, 1, 1, 1, 1, 1, 1, 1}}, {{1, 1, 1, 1, 1, 1, 1, 1}}};
  broken.error = "cannot read image 'b.png': corrupt or undecodable PNG";
  EXPECT_TRUE(build_int8(log2, conv_relu_model(), &broken).empty());
  EXPECT_TRUE(contains(log2.all(), "calibration: cannot read image 'b.png'")) << log2.all();
  EXPECT_TRUE(broken.cache_out.empty());
}

TEST(Calibrate, Int8WithoutCalibratorRecordsNoScales) {
  CaptureLogger log;
  auto bytes = build_int8(log, conv_relu_model(), nullptr);
  ASSERT_FALSE(bytes.empty()) << log.all();
  engine::EngineModel m = load(bytes);
  EXPECT_TRUE(m.int8_activation_scales.empty());
  EXPECT_TRUE(m.int8_weight_scales.empty());
}

}  // namespace
}  // namespace kiln::test

namespace kiln::test {
namespace {

TEST(Calibrate, AnExplicitlyQuantizedNetworkIsNotCalibrated) {
  ModelBuilder m;
  m.add_input("x", {4}).add_output("y");
  m.add_initializer("s", {}, {0.1f});
  m.add_node("QuantizeLinear", {"x", "s"}, "q");
  m.add_node("DequantizeLinear", {"q", "s"}, "y");
  CaptureLogger log;
  VectorCalibrator c;
  c.cache_in = "TRT-8601-EntropyCalibration2\nother: 3c010a14\n";  // would be an error if read
  auto bytes = build_int8(log, m.bytes(), &c);
  ASSERT_FALSE(bytes.empty()) << log.all();
  EXPECT_EQ(c.calls, 0);
  EXPECT_TRUE(c.cache_out.empty());
  EXPECT_TRUE(load(bytes).int8_activation_scales.empty());
}

}  // namespace
}  // namespace kiln::test
