// Fault: host memory runs out (the CPU backend's "out of device memory"). Each case runs in a
// child process whose address space is capped (RLIMIT_AS a little above what it already uses),
// so allocations fail for real: a build whose engine does not fit, loading an engine whose bytes
// do not fit, and a run at an input shape whose activations do not fit. Each must be one error,
// never a crash (an escaped std::bad_alloc aborts); the error of the run names the tensor that
// did not fit, and the same context then runs a small shape with bit-identical results. (A CPU
// context holds no memory until it runs, so creating one has nothing to run out of.)
// Sanitizer builds reserve terabytes of shadow memory, so an address-space cap cannot work there.
#include <sys/resource.h>

#include <cstring>

#include "tests/unit/faults/fault_test_util.h"

namespace kiln {
namespace {

using namespace fault_test;

#define SKIP_IF_SANITIZED()                                                                       \
  do {                                                                                            \
    if (test::kSanitized) GTEST_SKIP() << "an address-space limit cannot work under a sanitizer"; \
  } while (0)

// Caps this process's address space at what it maps now plus `headroom` bytes (soft limit only,
// so cap_address_space(-1) lifts it again).
bool cap_address_space(int64_t headroom) {
  rlimit r{};
  getrlimit(RLIMIT_AS, &r);
  if (headroom < 0) {
    r.rlim_cur = r.rlim_max;
    return setrlimit(RLIMIT_AS, &r) == 0;
  }
  unsigned long pages = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f || std::fscanf(f, "%lu", &pages) != 1) return false;
  std::fclose(f);
  r.rlim_cur = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + static_cast<rlim_t>(headroom);
  return setrlimit(RLIMIT_AS, &r) == 0;
}

constexpr int64_t kIn = 16;
constexpr int64_t kWide = 16384;  // h is [N, 16384] floats: 64 KiB per row, 4 GiB at N = 65536
constexpr int64_t kMaxN = 65536;

// y[N] = ReduceSum(h = x[N,16] @ w[16, wide], axis 1): a small input and output, a wide middle.
std::string model(int64_t wide) {
  test::ModelBuilder m;
  m.add_input("x", {"N", kIn}).add_output("y");
  std::vector<float> wv(kIn * wide);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = static_cast<float>(static_cast<int>(i % 19) - 9) / 8.f;
  m.add_initializer("w", {kIn, wide}, wv, test::Storage::kRawData);
  m.add_int64_initializer("axes", {1}, {1});
  m.add_node("MatMul", {"x", "w"}, "h", {}, "mm");
  m.add_node("ReduceSum", {"h", "axes"}, "y", {{"keepdims", 0}}, "sum");
  return m.bytes();
}

std::unique_ptr<Network> parse(Builder& b, CaptureLogger& log, const std::string& bytes) {
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  if (!p.parse(bytes.data(), bytes.size())) return nullptr;
  return net;
}

std::vector<uint8_t> build(Builder& b, Network& net) {
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(BackendKind::kCPU);
  OptimizationProfile p;
  p.setDimensions("x", OptProfileSelector::kMIN, {1, kIn});
  p.setDimensions("x", OptProfileSelector::kOPT, {4, kIn});
  p.setDimensions("x", OptProfileSelector::kMAX, {kMaxN, kIn});
  cfg->addOptimizationProfile(p);
  return b.buildSerializedNetwork(net, *cfg);
}

std::vector<float> input(int64_t n) {
  std::vector<float> x(n * kIn);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 11) - 5) / 4.f;
  return x;
}

bool run(ExecutionContext& ctx, int64_t n, const std::vector<float>& x, std::vector<float>& y) {
  y.assign(n, -1.f);
  return ctx.setInputShape("x", {n, kIn}) && ctx.setTensorAddress("x", const_cast<float*>(x.data())) &&
         ctx.setTensorAddress("y", y.data()) && ctx.execute();
}

// Exactly one error, and it says out of memory.
void expect_one_out_of_memory(Checks& c, const CaptureLogger& log) {
  c.one_error(log);
  c.expect(contains(log.last(), "out of memory"), "the error does not say out of memory: " + log.last());
}

TEST(HostMemoryFault, ShapeTooLargeForMemoryNamesTheTensorAndTheContextStaysUsable) {
  SKIP_IF_SANITIZED();
  std::string why = run_in_child([] {
    CaptureLogger log;
    Builder b(log);
    auto net = parse(b, log, model(kWide));
    if (!net) return "parse failed: " + log.all();
    auto plan = build(b, *net);
    if (plan.empty()) return "build failed: " + log.all();
    Runtime rt(log);
    auto e = rt.deserialize(plan.data(), plan.size());
    if (!e) return "load failed: " + log.all();
    auto ctx = e->createExecutionContext();
    auto small = input(4), big = input(kMaxN);
    std::vector<float> want, y;
    if (!run(*ctx, 4, small, want)) return "the first small run failed: " + log.all();
    if (!cap_address_space(int64_t(1) << 30)) return std::string("setrlimit failed");
    Checks c;
    for (int round = 0; round < 2; ++round) {
      log.errors.clear();
      c.expect(!run(*ctx, kMaxN, big, y), "a run needing 4 GiB succeeded under a 1 GiB cap");
      expect_one_out_of_memory(c, log);
      c.expect(contains(log.last(), "'h'"), "the error does not name the tensor 'h': " + log.last());
      log.errors.clear();
      c.expect(run(*ctx, 4, small, y), "the small run after the failure failed: " + log.all());
      c.expect(y == want, "the small run after the failure gave other results");
    }
    return c.failures;
  });
  EXPECT_EQ(why, "");
}

TEST(HostMemoryFault, BuildOutOfMemoryIsOneErrorAndTheNextBuildWorks) {
  SKIP_IF_SANITIZED();
  std::string why = run_in_child([] {
    CaptureLogger log;
    const std::string bytes = model(int64_t(1) << 20);  // w: 16 x 1Mi floats, 64 MiB
    Builder b(log);
    auto net = parse(b, log, bytes);
    if (!net) return "parse failed: " + log.all();
    if (!cap_address_space(16 << 20)) return std::string("setrlimit failed");
    Checks c;
    auto plan = build(b, *net);
    c.expect(plan.empty(), "a 64 MiB engine was built with 16 MiB to spare");
    expect_one_out_of_memory(c, log);
    cap_address_space(-1);
    log.errors.clear();
    auto net2 = parse(b, log, bytes);
    c.expect(net2 && !build(b, *net2).empty(), "the build without the cap failed: " + log.all());
    return c.failures;
  });
  EXPECT_EQ(why, "");
}

TEST(HostMemoryFault, LoadOutOfMemoryIsOneErrorAndTheNextLoadWorks) {
  SKIP_IF_SANITIZED();
  std::string why = run_in_child([] {
    CaptureLogger log;
    Builder b(log);
    auto net = parse(b, log, model(int64_t(1) << 20));
    if (!net) return "parse failed: " + log.all();
    auto plan = build(b, *net);
    if (plan.empty()) return "build failed: " + log.all();
    net.reset();
    Checks c;
    Runtime rt(log);
    if (!cap_address_space(16 << 20)) return std::string("setrlimit failed");
    auto e = rt.deserialize(plan.data(), plan.size());  // keeps its own copy: 64 MiB
    c.expect(!e, "a 64 MiB engine was loaded with 16 MiB to spare");
    expect_one_out_of_memory(c, log);
    cap_address_space(-1);
    log.errors.clear();
    e = rt.deserialize(plan.data(), plan.size());
    c.expect(e != nullptr, "the load without the cap failed: " + log.all());
    return c.failures;
  });
  EXPECT_EQ(why, "");
}

}  // namespace
}  // namespace kiln
