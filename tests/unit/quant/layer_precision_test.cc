// Per-layer precision constraints (Network::setLayerPrecision / setLayerOutputType with
// BuilderFlag kPREFER/kOBEY_PRECISION_CONSTRAINTS) and the INT8 accuracy guard
// (BuilderConfig::setInt8Tolerance), through the public Builder on the CPU backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>

#include "engine/engine_file.h"
#include "ir/graph.h"
#include "tests/unit/test_models.h"

namespace kiln::test {
namespace {

// Keeps every message (info and verbose too).
struct AllLogger : Logger {
  std::string text;
  void log(Severity s, const char* m) noexcept override {
    text += (s <= Severity::kERROR ? "ERROR: " : s == Severity::kWARNING ? "WARNING: " : "") + std::string(m) + "\n";
  }
};

// Seeded standard-normal batches for input x [1,4,4,4].
struct RandomCalibrator : Int8Calibrator {
  std::vector<std::vector<float>> batches;
  size_t next = 0;
  explicit RandomCalibrator(int n) {
    std::mt19937 rng(7);
    std::normal_distribution<float> d;
    for (int b = 0; b < n; ++b) {
      batches.emplace_back(64);
      for (float& v : batches.back()) v = d(rng);
    }
  }
  int getBatchSize() const noexcept override { return 1; }
  bool getBatch(void* bindings[], const char*[], int) noexcept override {
    if (next >= batches.size()) return false;
    bindings[0] = batches[next++].data();
    return true;
  }
  const void* readCalibrationCache(size_t& length) noexcept override { length = 0; return nullptr; }
  void writeCalibrationCache(const void*, size_t) noexcept override {}
  CalibrationAlgoType getAlgorithm() noexcept override { return CalibrationAlgoType::kMINMAX_CALIBRATION; }
};

// x [1,4,4,4] -> conv_a (1x1; channel 0 scaled by 1000) -> a -> conv_b (1x1; reads channel 0
// with weight 0.001, channels 1-3 with weights ~0.5) -> b -> relu_b -> conv_c (1x1) -> y.
// conv_b is the sensitive layer: its input's per-tensor INT8 scale is set by channel 0 (~1000),
// so channels 1-3 (~1), which carry its output, quantize to almost nothing.
std::string sensitive_model() {
  ModelBuilder m;
  m.add_input("x", {1, 4, 4, 4}).add_output("y");
  m.add_initializer("wa", {4, 4, 1, 1}, {1000, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  m.add_initializer("wb", {4, 4, 1, 1}, {0.001f, 0.5f, -0.3f, 0.8f, 0.001f, -0.7f, 0.2f, 0.4f,
                                         0.001f, 0.6f, 0.5f, -0.2f, 0.001f, 0.3f, -0.8f, 0.6f});
  m.add_initializer("wc", {4, 4, 1, 1}, {0.7f, -0.2f, 0.4f, 0.1f, -0.3f, 0.9f, 0.2f, -0.5f,
                                         0.5f, 0.3f, -0.6f, 0.2f, 0.1f, -0.4f, 0.3f, 0.8f});
  m.add_node("Conv", {"x", "wa"}, "a", {}, "conv_a");
  m.add_node("Conv", {"a", "wb"}, "b", {}, "conv_b");
  m.add_node("Relu", {"b"}, "rb", {}, "relu_b");
  m.add_node("Conv", {"rb", "wc"}, "y", {}, "conv_c");
  return m.bytes();
}

struct Built {
  std::vector<uint8_t> bytes;
  std::string log;
  std::map<std::string, std::string> precision;  // engine layer name -> its precision text
};

Built build(const std::function<void(Network&, BuilderConfig&)>& configure) {
  AllLogger log;
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  const std::string onnx = sensitive_model();
  EXPECT_TRUE(p.parse(onnx.data(), onnx.size())) << log.text;
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(BackendKind::kCPU);
  configure(*net, *cfg);
  Built r;
  r.bytes = b.buildSerializedNetwork(*net, *cfg);
  r.log = log.text;
  if (r.bytes.empty()) return r;
  auto copy = std::shared_ptr<std::byte>(new std::byte[r.bytes.size()], std::default_delete<std::byte[]>());
  std::memcpy(copy.get(), r.bytes.data(), r.bytes.size());
  auto m = engine::deserialize(copy, r.bytes.size());
  EXPECT_TRUE(m) << m.status().message();
  for (size_t i = 0; i < m->graph->nodes().size(); ++i) r.precision[m->graph->nodes()[i]->name] = m->precisions.at(i);
  return r;
}

std::string dump(const Built& b) {
  std::string s = b.log;
  for (const auto& [k, v] : b.precision) s += k + ": " + v + "\n";
  return s;
}

TEST(LayerPrecision, Fp32LayerStaysOutOfFp16) {
  Built b = build([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_b", TensorType::kFLOAT);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_EQ(b.precision["conv_a"], "float16") << dump(b);
  EXPECT_EQ(b.precision["conv_c"], "float16") << dump(b);
  // conv_b and the Relu fused into it ("conv_b+Relu") stay float32, and say why.
  ASSERT_TRUE(b.precision.count("conv_b+Relu")) << dump(b);
  EXPECT_EQ(b.precision["conv_b+Relu"], "float (layer precision conv_b:fp32)") << dump(b);
}

TEST(LayerPrecision, FusedLayerTakesTheConstraintOfTheNodeFoldedIn) {
  // relu_b is folded into conv_b+Relu: its output type float32 keeps that layer in float32.
  Built b = build([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    c.setFlag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
    n.setLayerOutputType("relu_b", TensorType::kFLOAT);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_EQ(b.precision["conv_b+Relu"], "float (layer output type relu_b:fp32)") << dump(b);
  EXPECT_EQ(b.precision["conv_a"], "float16") << dump(b);
}

TEST(LayerPrecision, WildcardAndNamedOverride) {
  Built b = build([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("*", TensorType::kFLOAT);
    n.setLayerPrecision("conv_c", TensorType::kHALF);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_EQ(b.precision["conv_a"], "float (layer precision *:fp32)") << dump(b);
  EXPECT_EQ(b.precision["conv_c"], "float16") << dump(b);
}

TEST(LayerPrecision, EngineLayerNamesAreAccepted) {
  Built b = build([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_b+Relu", TensorType::kFLOAT);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_EQ(b.precision["conv_b+Relu"], "float (layer precision conv_b+Relu:fp32)") << dump(b);
}

TEST(LayerPrecision, BadConstraintsAreOneClearError) {
  auto fails = [](const std::function<void(Network&, BuilderConfig&)>& f, const std::string& want) {
    Built b = build(f);
    EXPECT_TRUE(b.bytes.empty()) << want;
    EXPECT_TRUE(contains(b.log, want)) << "want: " << want << "\n" << b.log;
  };
  fails([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_x", TensorType::kFLOAT);
  }, "layer precision conv_x:fp32: no layer named 'conv_x' (layer names are the model's node names, e.g. 'conv_a'");
  fails([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    n.setLayerPrecision("conv_b", TensorType::kFLOAT);
  }, "precision constraints are off (none)");
  fails([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_b", TensorType::kHALF);
  }, "layer precision 'conv_b': fp16 needs the FP16 builder flag");
  fails([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_b", TensorType::kINT8);
  }, "layer precision 'conv_b': int8 needs the INT8 builder flag");
  fails([](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kFP16);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_b", TensorType::kBF16);
  }, "layer precision 'conv_b': bfloat16 is not supported");
}

TEST(LayerPrecision, Int8OnALayerWithoutInt8ObeyFailsPreferWarns) {
  RandomCalibrator cal(4);
  Built b = build([&](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kINT8);
    c.setInt8Calibrator(&cal);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_a", TensorType::kINT8);
    n.setLayerPrecision("conv_c", TensorType::kFLOAT);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_EQ(b.precision["conv_a"], "float (INT8 simulated: quantized input and weights)") << dump(b);
  EXPECT_EQ(b.precision["conv_c"], "float (not INT8: layer precision conv_c:fp32)") << dump(b);

  // The fused layer asked for in INT8 and its Relu in float32: the highest precision wins.
  RandomCalibrator cal2(2);
  Built h = build([&](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kINT8);
    c.setInt8Calibrator(&cal2);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_b+Relu", TensorType::kINT8);
    n.setLayerPrecision("relu_b", TensorType::kFLOAT);
  });
  ASSERT_FALSE(h.bytes.empty()) << h.log;
  EXPECT_EQ(h.precision["conv_b+Relu"], "float (not INT8: layer precision relu_b:fp32)") << dump(h);

  // INT8 asked for where kiln cannot give it (no scales: no calibrator): obey fails naming the
  // layer, prefer warns and builds.
  Built o = build([&](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kINT8);
    c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_a", TensorType::kINT8);
  });
  EXPECT_TRUE(o.bytes.empty());
  EXPECT_TRUE(contains(o.log, "node 'conv_a' (Conv): layer precision conv_a:int8 cannot be obeyed: its input has no "
                              "INT8 scale")) << o.log;
  Built p = build([&](Network& n, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kINT8);
    c.setFlag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
    n.setLayerPrecision("conv_a", TensorType::kINT8);
  });
  ASSERT_FALSE(p.bytes.empty()) << p.log;
  EXPECT_TRUE(contains(p.log, "WARNING: node 'conv_a' (Conv): layer precision conv_a:int8 is preferred but not "
                              "possible")) << p.log;
}

TEST(AccuracyGuard, KeepsTheSensitiveLayerInFloat) {
  RandomCalibrator cal(6);
  Built b = build([&](Network&, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kINT8);
    c.setInt8Calibrator(&cal);
    c.setInt8Tolerance(0.05);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_TRUE(contains(b.log, "the accuracy guard kept 1 layers in float:\n  conv_b+Relu (INT8 error at its output "))
      << b.log;
  EXPECT_TRUE(contains(b.precision["conv_b+Relu"], "not INT8: kept from INT8 by the accuracy guard")) << dump(b);
  EXPECT_EQ(b.precision["conv_a"], "float (INT8 simulated: quantized input and weights)") << dump(b);
  EXPECT_EQ(b.precision["conv_c"], "float (INT8 simulated: quantized input and weights)") << dump(b);
}

TEST(AccuracyGuard, MeasuresWithoutToleranceAndRefusesWithoutInt8) {
  RandomCalibrator cal(2);
  Built b = build([&](Network&, BuilderConfig& c) {
    c.setFlag(BuilderFlag::kINT8);
    c.setInt8Calibrator(&cal);
  });
  ASSERT_FALSE(b.bytes.empty()) << b.log;
  EXPECT_TRUE(contains(b.log, "INT8 output error (relative L2 against every layer in float, on 2 calibration batches): "))
      << b.log;
  EXPECT_TRUE(contains(b.precision["conv_b+Relu"], "INT8 simulated")) << dump(b);

  Built f = build([&](Network&, BuilderConfig& c) { c.setInt8Tolerance(0.05); });
  EXPECT_TRUE(f.bytes.empty());
  EXPECT_TRUE(contains(f.log, "an INT8 tolerance (accuracy guard) needs the INT8 builder flag")) << f.log;
}

}  // namespace
}  // namespace kiln::test
