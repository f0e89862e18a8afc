// Fault: a model's external-data file changes after the model was imported and before the
// engine is built. The importer maps external data (nothing is copied), so a file truncated in
// place would make the builder's reads raise SIGBUS, and one rewritten in place would hand it
// other weights than those imported. The builder must refuse instead, with one error naming the
// file; a file replaced by a new one (rename: the mapping keeps the old one) or left alone builds
// as usual. Each case runs in a child process, so a crash fails only that case.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "tests/unit/faults/fault_test_util.h"

namespace kiln {
namespace {

using namespace fault_test;

constexpr int kN = 256;  // w is kN x kN floats: 256 KiB, 64 pages of the mapping

std::vector<float> weights(float scale) {
  std::vector<float> w(kN * kN);
  for (int i = 0; i < kN * kN; ++i) w[i] = scale * static_cast<float>((i * 37) % 101 - 50) / 50.f;
  return w;
}

// y[1,kN] = x[1,kN] @ w, with w in the external-data file `w.bin` next to model.onnx.
void write_model(const TempDir& dir, const std::vector<float>& w) {
  test::ModelBuilder m;
  m.add_input("x", {1, kN}).add_output("y", {1, kN});
  m.add_external_initializer("w", {kN, kN}, "w.bin", w.size() * 4);
  m.add_node("MatMul", {"x", "w"}, "y", {}, "mm");
  std::string bytes = m.bytes();
  write_bytes(dir.file("model.onnx"), bytes.data(), bytes.size());
  write_bytes(dir.file("w.bin"), w.data(), w.size() * 4);
}

std::vector<float> input() {
  std::vector<float> x(kN);
  for (int i = 0; i < kN; ++i) x[i] = static_cast<float>(i % 7) - 3.f;
  return x;
}

// Runs a built engine once on input().
std::vector<float> run(CaptureLogger& log, const std::vector<uint8_t>& plan) {
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  if (!e) return {};
  auto ctx = e->createExecutionContext();
  auto x = input();
  std::vector<float> y(kN, -1.f);
  ctx->setTensorAddress("x", x.data());
  ctx->setTensorAddress("y", y.data());
  if (!ctx->execute()) return {};
  return y;
}

// Parses the model, lets `change` alter the folder, then builds (CPU). Returns the engine bytes.
std::vector<uint8_t> parse_change_build(const TempDir& dir, CaptureLogger& log, const std::function<void()>& change) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  if (!p.parseFromFile(dir.file("model.onnx"))) return {};
  change();
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(BackendKind::kCPU);
  return b.buildSerializedNetwork(*net, *cfg);
}

// The builder must refuse, with one error that names the file and says it changed size.
std::string expect_refused(const std::function<void(const TempDir&)>& change) {
  TempDir dir;
  write_model(dir, weights(1.f));
  CaptureLogger log;
  auto plan = parse_change_build(dir, log, [&] { change(dir); });
  Checks c;
  c.expect(plan.empty(), "the build succeeded on a changed external-data file");
  c.one_error(log);
  c.expect(contains(log.last(), "'" + dir.file("w.bin") + "'"), "the error does not name the file: " + log.last());
  c.expect(contains(log.last(), "changed size"), "the error does not say the file changed size: " + log.last());
  return c.failures;
}

TEST(ExternalDataFault, UnchangedFileBuildsAndRuns) {
  TempDir dir;
  auto w = weights(1.f);
  write_model(dir, w);
  CaptureLogger log;
  auto plan = parse_change_build(dir, log, [] {});
  ASSERT_FALSE(plan.empty()) << log.all();
  auto y = run(log, plan);
  ASSERT_EQ(y.size(), size_t(kN)) << log.all();
  auto x = input();
  for (int j = 0; j < kN; j += 17) {
    float want = 0;
    for (int i = 0; i < kN; ++i) want += x[i] * w[i * kN + j];
    EXPECT_NEAR(y[j], want, 1e-3f) << j;
  }
}

TEST(ExternalDataFault, TruncatedAfterImportIsRefusedNamingTheFile) {
  for (off_t size : {off_t(0), off_t(4096), off_t(kN * kN * 4 / 2), off_t(kN * kN * 4 - 1)}) {
    std::string why = run_in_child([&] {
      return expect_refused([size](const TempDir& dir) { (void)!truncate(dir.file("w.bin").c_str(), size); });
    });
    EXPECT_EQ(why, "") << "w.bin truncated to " << size << " bytes";
  }
}

TEST(ExternalDataFault, GrownAfterImportIsRefusedNamingTheFile) {
  std::string why = run_in_child([] {
    return expect_refused([](const TempDir& dir) {
      std::ofstream(dir.file("w.bin"), std::ios::binary | std::ios::app) << std::string(1000, 'x');
    });
  });
  EXPECT_EQ(why, "");
}

// Truncated and written again to its old size (open with O_TRUNC, write: how a file is usually
// rewritten in place). The mapping now shows other bytes than those imported: refused too.
TEST(ExternalDataFault, RewrittenInPlaceToTheSameSizeIsRefusedNamingTheFile) {
  std::string why = run_in_child([] {
    TempDir dir;
    write_model(dir, weights(1.f));
    CaptureLogger log;
    auto w2 = weights(2.f);
    usleep(20000);  // a modification time the filesystem can tell from the first write's
    auto plan = parse_change_build(dir, log, [&] { write_bytes(dir.file("w.bin"), w2.data(), w2.size() * 4); });
    Checks c;
    c.expect(plan.empty(), "the build succeeded on an external-data file rewritten since the import");
    c.one_error(log);
    c.expect(contains(log.last(), "'" + dir.file("w.bin") + "' was modified since it was read"),
             "the error does not name the modified file: " + log.last());
    return c.failures;
  });
  EXPECT_EQ(why, "");
}

// Replaced by a new file (write a temp file, rename it over): the mapping keeps the old file,
// so the engine is built from the weights that were imported.
TEST(ExternalDataFault, ReplacedByRenameBuildsFromTheImportedWeights) {
  std::string why = run_in_child([] {
    TempDir dir;
    auto w = weights(1.f);
    write_model(dir, w);
    CaptureLogger log;
    auto plan = parse_change_build(dir, log, [&] {
      std::vector<float> small(16, 9.f);
      write_bytes(dir.file("w.new"), small.data(), small.size() * 4);
      std::rename(dir.file("w.new").c_str(), dir.file("w.bin").c_str());
    });
    if (plan.empty()) return "build failed: " + log.all();
    auto y = run(log, plan);
    if (y.size() != size_t(kN)) return "run failed: " + log.all();
    auto x = input();
    float want = 0;
    for (int i = 0; i < kN; ++i) want += x[i] * w[i * kN];
    if (std::fabs(y[0] - want) > 1e-3f) return "y[0] = " + std::to_string(y[0]) + ", want " + std::to_string(want);
    return std::string();
  });
  EXPECT_EQ(why, "");
}

// Already short when the model is imported: the importer refuses, naming the file and the range.
TEST(ExternalDataFault, TruncatedBeforeImportIsRefusedByTheImporter) {
  TempDir dir;
  write_model(dir, weights(1.f));
  ASSERT_EQ(truncate(dir.file("w.bin").c_str(), 1000), 0);
  CaptureLogger log;
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_FALSE(p.parseFromFile(dir.file("model.onnx")));
  ASSERT_EQ(log.errors.size(), 1u) << log.all();
  EXPECT_TRUE(contains(log.last(), "lies outside '" + dir.file("w.bin") + "' (1000 bytes)")) << log.last();
}

}  // namespace
}  // namespace kiln
