// BuilderConfig additions used by the CLI: the progress monitor and optimization level 0.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln {
namespace {

const char* kModel = "/usr/share/libonnx-testdata/data/node/test_softmax_example/model.onnx";

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
