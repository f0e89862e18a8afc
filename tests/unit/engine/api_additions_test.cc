// BuilderConfig additions used by the CLI: the progress monitor and optimization level 0.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln {
namespace {

// ONNX 1.12's test_softmax_example and test_nonzero_example, shipped with the tests (the GPU machine
// has no libonnx-testdata).
const char* kModel = KILN_TEST_DATA_DIR "/softmax_example.onnx";

class Quiet : public Logger {
 public:
  void log(Severity s, const char* m) noexcept override { if (s <= Severity::kERROR) errors.push_back(m); }
  std::vector<std::string> errors;
};

class Recorder : public ProgressMonitor {
 public:
  void phaseStart(const char* phase, const char*, int steps) noexcept override {
    events.push_back(std::string("start ") + phase + " " + std::to_string(steps));
  }
  bool stepComplete(const char*, int) noexcept override { ++steps; return !cancel; }
  void phaseFinish(const char* phase) noexcept override { events.push_back(std::string("finish ") + phase); }
  std::vector<std::string> events;
  int steps = 0;
  bool cancel = false;
};

std::vector<uint8_t> build(Quiet& log, Recorder* rec, int level) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parseFromFile(kModel));
  auto c = b.createBuilderConfig();
  c->setProgressMonitor(rec);
  c->setBuilderOptimizationLevel(level);
  return b.buildSerializedNetwork(*net, *c);
}

TEST(BuilderConfigTest, ProgressMonitorSeesPhasesAndSteps) {
  Quiet log;
  Recorder rec;
  EXPECT_FALSE(build(log, &rec, 3).empty());
  ASSERT_EQ(rec.events.size(), 4u);
  EXPECT_EQ(rec.events[0], "start Graph optimization 1");
  EXPECT_EQ(rec.events[2], "start Tactic selection 1");
  EXPECT_EQ(rec.steps, 1);
}

TEST(BuilderConfigTest, ProgressMonitorCanCancel) {
  Quiet log;
  Recorder rec;
  rec.cancel = true;
  EXPECT_TRUE(build(log, &rec, 3).empty());
  ASSERT_FALSE(log.errors.empty());
  EXPECT_NE(log.errors[0].find("cancelled"), std::string::npos);
}

TEST(BuilderConfigTest, LevelZeroSkipsPassesAndStillBuilds) {
  Quiet log;
  Recorder rec;
  EXPECT_FALSE(build(log, &rec, 0).empty());
  EXPECT_EQ(rec.events.front(), "start Tactic selection 1");  // no graph optimization phase
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

class VectorAllocator : public OutputAllocator {
 public:
  void* reallocateOutput(const char*, void*, uint64_t size, uint64_t) noexcept override {
    bytes.resize(size);
    return bytes.data();
  }
  void notifyShape(const char*, const Dims& d) noexcept override { dims = d; }
  std::vector<uint8_t> bytes;
  Dims dims;
};

// NonZero's output shape depends on the data: the context asks the allocator for its memory.
TEST(OutputAllocatorTest, SizesADataDependentOutput) {
  Quiet log;
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  ASSERT_TRUE(p.parseFromFile(KILN_TEST_DATA_DIR "/nonzero_example.onnx"));
  auto config = b.createBuilderConfig();
  config->setBackend(BackendKind::kCPU);  // host buffers below (the CUDA form is in tests/gpu)
  auto bytes = b.buildSerializedNetwork(*net, *config);
  ASSERT_FALSE(bytes.empty());
  Runtime rt(log);
  auto engine = rt.deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(engine);
  auto ctx = engine->createExecutionContext();
  bool cond[4] = {true, false, true, true};
  VectorAllocator alloc;
  ASSERT_TRUE(ctx->setTensorAddress("condition", cond));
  ASSERT_TRUE(ctx->setOutputAllocator("result", &alloc));
  EXPECT_FALSE(ctx->setOutputAllocator("condition", &alloc));
  ASSERT_TRUE(ctx->execute()) << (log.errors.empty() ? "" : log.errors.back());
  EXPECT_EQ(alloc.dims, (Dims{2, 3}));
  ASSERT_EQ(alloc.bytes.size(), 6 * sizeof(int64_t));
  std::vector<int64_t> got(6);
  std::memcpy(got.data(), alloc.bytes.data(), alloc.bytes.size());
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 1, 0, 0, 1}));
}

}  // namespace
}  // namespace kiln
