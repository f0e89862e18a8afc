// Fault: a saved engine file that is not what this kiln can run. A real engine, saved to a file,
// is patched: an older and a newer format version, an engine built by another kiln version, cut
// at many lengths, one byte flipped in each region. Loading it with deserializeFromFile must give
// exactly one error that names the file and says what is wrong (both versions for a version
// mismatch) and to rebuild the engine; nothing may crash. A file truncated after it was loaded
// (its weights alias the mapping) or rewritten in place must fail the next context and the next
// run of an existing context cleanly, naming the file.
#include <xxhash.h>

#include <cmath>
#include <cstring>

#include "engine/engine_file.h"
#include "tests/unit/faults/fault_test_util.h"

namespace kiln {
namespace {

using namespace fault_test;

constexpr int kN = 64;  // w is 64 x 64 floats: 16 KiB of weights, four pages

// y[1,kN] = Relu(x[1,kN] @ w)
std::string model() {
  test::ModelBuilder m;
  m.add_input("x", {1, kN}).add_output("y", {1, kN});
  std::vector<float> w(kN * kN);
  for (int i = 0; i < kN * kN; ++i) w[i] = static_cast<float>((i * 13) % 29 - 14) / 14.f;
  m.add_initializer("w", {kN, kN}, w, test::Storage::kRawData);
  m.add_node("MatMul", {"x", "w"}, "h", {}, "MatMul_0");
  m.add_node("Relu", {"h"}, "y", {}, "Relu_0");
  return m.bytes();
}

std::vector<uint8_t> build() {
  CaptureLogger log;
  auto plan = test::build_engine(log, model(), BackendKind::kCPU);
  EXPECT_FALSE(plan.empty()) << log.all();
  return plan;
}

uint64_t u64_at(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, &b[at], 8);
  return v;
}

void reseal(std::vector<uint8_t>& b) {  // recomputes the checksum after an edit
  uint64_t h = XXH64(b.data() + 48, b.size() - 48, 0);
  std::memcpy(&b[40], &h, 8);
}

// Writes `bytes` as an engine file and loads it; the load must fail with exactly one error that
// names the file and holds each of `parts`.
void expect_refused(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts, const std::string& what) {
  TempDir dir;
  std::string path = dir.file("model.engine");
  write_bytes(path, bytes.data(), bytes.size());
  std::string why = run_in_child([&] {
    CaptureLogger log;
    Runtime rt(log);
    auto e = rt.deserializeFromFile(path);
    Checks c;
    c.expect(!e, "the engine was accepted");
    c.one_error(log);
    c.expect(contains(log.last(), "'" + path + "'"), "the error does not name the file: " + log.last());
    for (const auto& p : parts) c.expect(contains(log.last(), p), "the error lacks '" + p + "': " + log.last());
    return c.failures;
  });
  EXPECT_EQ(why, "") << what;
}

TEST(EngineFileFault, TheUnpatchedFileLoadsAndRuns) {
  auto plan = build();
  TempDir dir;
  write_bytes(dir.file("model.engine"), plan.data(), plan.size());
  CaptureLogger log;
  Runtime rt(log);
  auto e = rt.deserializeFromFile(dir.file("model.engine"));
  ASSERT_TRUE(e) << log.all();
  auto ctx = e->createExecutionContext();
  std::vector<float> x(kN, 1.f), y(kN, -1.f);
  ctx->setTensorAddress("x", x.data());
  ctx->setTensorAddress("y", y.data());
  EXPECT_TRUE(ctx->execute()) << log.all();
  for (float v : y) EXPECT_GE(v, 0.f);
}

TEST(EngineFileFault, OlderFormatVersionSaysRebuildAndNamesBothVersions) {
  auto plan = build();
  const uint32_t current = engine::kFormatVersion, older = current - 1;
  std::memcpy(&plan[8], &older, 4);
  expect_refused(plan, {"engine format version " + std::to_string(older), "(" + std::to_string(current) + ")", "older",
                        "rebuild the engine"}, "older format version");
}

TEST(EngineFileFault, NewerFormatVersionSaysRebuildAndNamesBothVersions) {
  auto plan = build();
  const uint32_t current = engine::kFormatVersion, newer = current + 1;
  std::memcpy(&plan[8], &newer, 4);
  expect_refused(plan, {"engine format version " + std::to_string(newer), "(" + std::to_string(current) + ")", "newer",
                        "rebuild the engine"}, "newer format version");
}

TEST(EngineFileFault, OtherKilnVersionSaysRebuildAndNamesBothVersions) {
  auto plan = build();
  const std::string mine = engine::kKilnVersion, other = "9.9.9";
  ASSERT_EQ(mine.size(), other.size());
  auto at = std::search(plan.begin() + 48, plan.end(), mine.begin(), mine.end());
  ASSERT_NE(at, plan.end());
  std::copy(other.begin(), other.end(), at);
  reseal(plan);
  expect_refused(plan, {"built by kiln " + other, "this is kiln " + mine, "rebuild the engine"}, "other kiln version");
}

TEST(EngineFileFault, TruncatedFileIsOneClearError) {
  auto plan = build();
  const size_t header_end = 48 + u64_at(plan, 16), weights = u64_at(plan, 24);
  for (size_t cut : {size_t(0), size_t(7), size_t(8), size_t(47), size_t(48), header_end / 2 + 24, header_end,
                     weights, weights + 4096, plan.size() - 1}) {
    std::vector<uint8_t> b(plan.begin(), plan.begin() + cut);
    expect_refused(b, {"rebuild the engine"}, "cut at " + std::to_string(cut) + " of " + std::to_string(plan.size()));
  }
}

TEST(EngineFileFault, FlippedByteFailsTheChecksum) {
  auto plan = build();
  const size_t weights = u64_at(plan, 24);
  for (size_t pos : {size_t(48), size_t(60), weights, weights + 5000, plan.size() - 1}) {
    auto b = plan;
    b[pos] ^= 0x10;
    expect_refused(b, {"checksum mismatch", "rebuild the engine"}, "byte " + std::to_string(pos) + " flipped");
  }
  for (size_t pos : {size_t(3), size_t(13), size_t(17), size_t(25), size_t(33)}) {  // magic, reserved, sizes
    auto b = plan;
    b[pos] ^= 0x10;
    expect_refused(b, {"rebuild the engine"}, "preamble byte " + std::to_string(pos) + " flipped");
  }
}

// Writes `plan` as an engine file; in a child process, loads it, runs a context once, then returns
// what check(path, engine, context, log) says went wrong.
std::string after_first_run(
    const std::vector<uint8_t>& plan,
    const std::function<std::string(const std::string&, Engine&, ExecutionContext&, CaptureLogger&)>& check) {
  TempDir dir;
  std::string path = dir.file("model.engine");
  write_bytes(path, plan.data(), plan.size());
  return run_in_child([&] {
    CaptureLogger log;
    Runtime rt(log);
    auto e = rt.deserializeFromFile(path);
    if (!e) return "load failed: " + log.all();
    auto ctx = e->createExecutionContext();
    std::vector<float> x(kN, 1.f), y(kN, -1.f);
    ctx->setTensorAddress("x", x.data());
    ctx->setTensorAddress("y", y.data());
    if (!ctx->execute()) return "first run failed: " + log.all();
    return check(path, *e, *ctx, log);
  });
}

// The weights of an engine loaded from a file alias the mapping. Truncating the file in place
// afterwards must not crash the next context or run: they fail, naming the file.
TEST(EngineFileFault, TruncatedAfterLoadFailsTheNextContextCleanly) {
  std::string why = after_first_run(build(), [](const std::string& path, Engine& e, ExecutionContext& ctx,
                                                CaptureLogger& log) {
    if (truncate(path.c_str(), 0) != 0) return std::string("truncate failed");
    Checks c;
    auto ctx2 = e.createExecutionContext();
    c.expect(!ctx2, "a context was created on an engine whose file was truncated");
    c.expect(contains(log.last(), "'" + path + "'") && contains(log.last(), "changed size"),
             "createExecutionContext's error does not name the changed file: " + log.all());
    log.errors.clear();
    c.expect(!ctx.execute(), "the old context ran on an engine whose file was truncated");
    c.expect(contains(log.last(), "'" + path + "'") && contains(log.last(), "changed size"),
             "execute's error does not name the changed file: " + log.all());
    return c.failures;
  });
  EXPECT_EQ(why, "");
}

// Rewritten in place with another engine of the same size (as `cp other.engine model.engine`
// does): the mapping now shows the other engine's bytes under this engine's layout. Refused.
TEST(EngineFileFault, RewrittenInPlaceAfterLoadFailsTheNextRunCleanly) {
  auto plan = build();
  std::string why = after_first_run(plan, [&](const std::string& path, Engine&, ExecutionContext& ctx,
                                              CaptureLogger& log) {
    usleep(20000);  // a modification time the filesystem can tell from the first write's
    auto other = plan;
    other[plan.size() - 1] ^= 1;
    write_bytes(path, other.data(), other.size());
    Checks c;
    c.expect(!ctx.execute(), "the context ran on an engine whose file was rewritten");
    c.expect(contains(log.last(), "'" + path + "' was modified since it was read"),
             "execute's error does not name the modified file: " + log.all());
    return c.failures;
  });
  EXPECT_EQ(why, "");
}

}  // namespace
}  // namespace kiln
