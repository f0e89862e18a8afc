// The tuner (src/tuning/tuner.h) on a test backend whose timings are scripted: the fastest wins,
// ties within 2% go to the earlier candidate, two builds pick alike, a warm cache times nothing,
// tactic sources filter, and the cache file: missing, corrupted, truncated, stale (another
// device, unknown tactics), unwritable.
#include "tuning/tuner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace kiln::tuning {
namespace {

constexpr uint32_t kA = 1u << 1, kB = 1u << 2;

// A chain of `n` Relu layers on [1, 8 * (i + 1)] tensors (distinct signatures).
struct ChainGraph {
  Graph g;
  ValueShapes shapes;
  explicit ChainGraph(int n) {
    Value* x = g.add_value("x", DataType::kFloat32, Shape::from_static({1, 8})).value();
    g.inputs.push_back(x);
    shapes.dims[x] = {1, 8};
    for (int i = 0; i < n; ++i) {
      std::vector<int64_t> d = {1, 8 * (i + 1)};
      Value* y = g.add_value("y" + std::to_string(i), DataType::kFloat32, Shape::from_static(d)).value();
      auto node = std::make_unique<Node>();
      node->name = "relu" + std::to_string(i);
      node->op_type = "Relu";
      node->opset = 17;
      node->inputs = {x};
      node->outputs = {y};
      g.add_node(std::move(node));
      shapes.dims[y] = d;
      x = y;
    }
    g.outputs.push_back(x);
  }
};

// Times from a script: times[node][tactic] (every run the same, or a list cycled through).
class ScriptedTimer : public TacticTimer {
 public:
  std::map<size_t, std::vector<TacticCandidate>> cands;
  std::map<std::pair<size_t, std::string>, std::vector<double>> times;
  std::map<std::pair<size_t, std::string>, int> runs;
  int total_runs = 0;

  std::vector<TacticCandidate> candidates(size_t i) override { return cands.count(i) ? cands[i] : std::vector<TacticCandidate>{}; }
  Expected<double> time_once(size_t i, const std::string& t) override {
    auto& v = times.at({i, t});
    int k = runs[{i, t}]++;
    ++total_runs;
    return v[k % v.size()];
  }
  void script(size_t i, const std::vector<std::pair<std::string, double>>& ts, uint32_t source = kA) {
    for (const auto& [id, ms] : ts) {
      cands[i].push_back({id, source});
      times[{i, id}] = {ms};
    }
  }
};

TunerOptions opts() {
  TunerOptions o;
  o.device_key = "test device";
  o.avg_runs = 5;
  o.warmup_runs = 1;
  return o;
}

std::vector<std::string> initial(const Graph& g) {
  std::vector<std::string> t;
  for (const auto& n : g.nodes()) t.push_back("default." + n->op_type);
  return t;
}

TEST(Tuner, KeepsTheFastestMedianAndReportsTheRunnerUp) {
  ChainGraph c(3);
  ScriptedTimer timer;
  timer.script(0, {{"t.a", 2.0}, {"t.b", 1.0}, {"t.c", 3.0}});
  timer.script(1, {{"t.a", 1.0}, {"t.b", 1.5}});
  // Node 2: one candidate: nothing to time, the candidate is taken.
  timer.script(2, {{"t.only", 9.0}});
  // An outlier run does not move the median.
  timer.times[{0, "t.c"}] = {0.1, 3.0, 3.0, 3.0, 3.0, 3.0};
  auto tactics = initial(c.g);
  auto r = tune(c.g, c.shapes, timer, opts(), nullptr, tactics);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(tactics, (std::vector<std::string>{"t.b", "t.a", "t.only"}));
  EXPECT_EQ(r->tunable, 2);
  EXPECT_EQ(r->timed, 2);
  EXPECT_DOUBLE_EQ(r->layers[0].ms, 1.0);
  EXPECT_EQ(r->layers[0].runner_up, "t.a");
  EXPECT_DOUBLE_EQ(r->layers[0].runner_up_ms, 2.0);
  EXPECT_EQ(r->layers[2].candidates, 1);
  EXPECT_LT(r->layers[2].ms, 0);
  // Warm-up + timed runs per tactic: (1 + 5) x (3 + 2); node 2 never ran.
  EXPECT_EQ(timer.total_runs, 6 * 5);
}

TEST(Tuner, TiesWithinTwoPercentGoToTheEarlierCandidate) {
  ChainGraph c(3);
  ScriptedTimer timer;
  timer.script(0, {{"first", 1.015}, {"second", 1.0}});   // within 2%: the list order wins
  timer.script(1, {{"first", 1.03}, {"second", 1.0}});    // 3% slower: the faster wins
  timer.script(2, {{"a", 1.019}, {"b", 1.01}, {"c", 1.0}});  // a and b within 2% of c: a (first)
  auto tactics = initial(c.g);
  ASSERT_TRUE(tune(c.g, c.shapes, timer, opts(), nullptr, tactics));
  EXPECT_EQ(tactics, (std::vector<std::string>{"first", "second", "a"}));
}

TEST(Tuner, TwoBuildsWithNoisyTimesPickTheSameTactics) {
  // Each build's measurements wobble by up to 1.5% around near-equal means: the 2% tie rule
  // makes both builds pick the earlier candidate.
  std::vector<std::string> picks[2];
  for (int build = 0; build < 2; ++build) {
    ChainGraph c(4);
    ScriptedTimer timer;
    for (size_t i = 0; i < 4; ++i) {
      timer.script(i, {{"x", 1.0}, {"y", 1.0}});
      const double wobble = build ? 0.985 : 1.015;
      timer.times[{i, "x"}] = {1.0 * wobble, 1.0, 1.0 / wobble};
      timer.times[{i, "y"}] = {1.0 / wobble, 0.995, 1.0 * wobble};
    }
    picks[build] = initial(c.g);
    ASSERT_TRUE(tune(c.g, c.shapes, timer, opts(), nullptr, picks[build]));
  }
  EXPECT_EQ(picks[0], picks[1]);
  EXPECT_EQ(picks[0], std::vector<std::string>(4, "x"));
}

TEST(Tuner, WarmCacheTimesNothingAndPicksAlike) {
  ChainGraph c(3);
  TimingCache cache;
  std::vector<std::string> cold = initial(c.g), warm = initial(c.g);
  {
    ScriptedTimer timer;
    for (size_t i = 0; i < 3; ++i) timer.script(i, {{"p", 2.0 - i}, {"q", 1.0 + 0.5 * i}});
    auto r = tune(c.g, c.shapes, timer, opts(), &cache, cold);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->timed, 3);
    EXPECT_EQ(cache.size(), 6u);
  }
  ScriptedTimer timer;  // other times: a warm cache must not ask for them
  for (size_t i = 0; i < 3; ++i) timer.script(i, {{"p", 100.0}, {"q", 100.0}});
  auto r = tune(c.g, c.shapes, timer, opts(), &cache, warm);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->timed, 0);
  EXPECT_EQ(r->cache_hits, 6);
  EXPECT_EQ(timer.total_runs, 0);
  EXPECT_EQ(warm, cold);
  EXPECT_FALSE(r->layers[0].timed);
  EXPECT_GE(r->layers[0].ms, 0);
}

TEST(Tuner, StaleEntriesAreIgnoredAndMissingTacticsTimed) {
  ChainGraph c(1);
  TimingCache cache;
  const std::string sig = layer_signature(*c.g.nodes()[0], c.shapes);
  // Another device's times (fast), and a tactic this backend no longer lists.
  ASSERT_TRUE(cache.record("another device", sig, {"p", 0.001, 5}));
  ASSERT_TRUE(cache.record("test device", sig, {"retired", 0.001, 5}));
  ASSERT_TRUE(cache.record("test device", sig, {"p", 2.0, 5}));
  ScriptedTimer timer;
  timer.script(0, {{"p", 2.0}, {"q", 1.0}});
  auto tactics = initial(c.g);
  auto r = tune(c.g, c.shapes, timer, opts(), &cache, tactics);
  ASSERT_TRUE(r);
  EXPECT_EQ(tactics[0], "q");                           // never "retired"
  EXPECT_EQ(timer.runs.count(std::make_pair(size_t(0), std::string("p"))), 0u);  // p came from the cache
  EXPECT_EQ((timer.runs[{0, "q"}]), 6);  // q was timed
  EXPECT_EQ(r->cache_hits, 1);
  EXPECT_EQ(r->timed, 1);
}

TEST(Tuner, SignatureChangesWithShapesTypesAndAttributes) {
  ChainGraph a(1), b(1);
  Node& n = *b.g.nodes()[0];
  const std::string base = layer_signature(*a.g.nodes()[0], a.shapes);
  EXPECT_EQ(base, layer_signature(n, b.shapes));
  n.attrs["alpha"] = 0.5f;
  EXPECT_NE(base, layer_signature(n, b.shapes));
  n.attrs.clear();
  b.shapes.dims[n.outputs[0]] = {2, 8};
  EXPECT_NE(base, layer_signature(n, b.shapes));
  b.shapes.dims[n.outputs[0]] = {1, 8};
  n.outputs[0]->dtype = DataType::kFloat16;
  EXPECT_NE(base, layer_signature(n, b.shapes));
}

TEST(Tuner, TacticSourcesFilterAndLevelZeroTimesNothing) {
  ChainGraph c(2);
  ScriptedTimer timer;
  timer.script(0, {{"a1", 2.0}}, kA);
  timer.script(0, {{"b1", 1.0}}, kB);
  timer.script(1, {{"b2", 1.0}}, kB);
  timer.script(1, {{"b3", 0.5}}, kB);
  TunerOptions o = opts();
  o.sources = kA;  // B left out: node 0 keeps a1 (its one enabled candidate), node 1 its default
  auto tactics = initial(c.g);
  auto r = tune(c.g, c.shapes, timer, o, nullptr, tactics);
  ASSERT_TRUE(r);
  EXPECT_EQ(tactics, (std::vector<std::string>{"a1", "default.Relu"}));
  EXPECT_EQ(timer.total_runs, 0);
  o.sources = ~0u;
  o.time = false;  // level 0: the first candidate, nothing timed
  tactics = initial(c.g);
  r = tune(c.g, c.shapes, timer, o, nullptr, tactics);
  ASSERT_TRUE(r);
  EXPECT_EQ(tactics, (std::vector<std::string>{"a1", "b2"}));
  EXPECT_EQ(r->tunable, 2);
  EXPECT_EQ(timer.total_runs, 0);
}

TEST(Tuner, TimerErrorsFailTheBuild) {
  ChainGraph c(1);
  struct Failing : ScriptedTimer {
    Expected<double> time_once(size_t, const std::string& t) override { return err("tactic ", t, " crashed"); }
  } timer;
  timer.script(0, {{"p", 1.0}, {"q", 2.0}});
  auto tactics = initial(c.g);
  auto r = tune(c.g, c.shapes, timer, opts(), nullptr, tactics);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("tactic p crashed"), std::string::npos);
}

// ---- The cache file ----

std::string temp_dir() {
  char t[] = "/tmp/kiln-tuner-XXXXXX";
  return mkdtemp(t);
}

TEST(TunerCacheFile, MissingIsEmptyWithoutWarning) {
  std::string warning;
  TimingCache c = read_cache_file(temp_dir() + "/none.cache", &warning);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(warning, "");
}

TEST(TunerCacheFile, WritesAtomicallyAndMergesWithTheFile) {
  const std::string dir = temp_dir(), path = dir + "/t.cache";
  TimingCache a, b;
  ASSERT_TRUE(a.record("dev", "sig1", {"p", 1.0, 3}));
  ASSERT_TRUE(b.record("dev", "sig2", {"q", 2.0, 3}));
  ASSERT_TRUE(write_cache_file(path, a));
  ASSERT_TRUE(write_cache_file(path, b));  // another build's entries: merged, not lost
  std::string warning;
  TimingCache back = read_cache_file(path, &warning);
  EXPECT_EQ(warning, "");
  EXPECT_EQ(back.size(), 2u);
  // No temporary file left behind.
  EXPECT_EQ(std::system(("test $(ls " + dir + " | wc -l) -eq 1").c_str()), 0);
}

TEST(TunerCacheFile, CorruptedOrTruncatedWarnsOnceAndIsEmpty) {
  const std::string path = temp_dir() + "/t.cache";
  TimingCache a;
  ASSERT_TRUE(a.record("dev", "sig1", {"p", 1.0, 3}));
  std::string text = a.serialize();
  for (const std::string& bad : {text.substr(0, text.size() / 2), std::string("garbage\n"),
                                 [&] { std::string t = text; t[t.find("\tp\t") + 1] = 'x'; return t; }()}) {
    std::ofstream(path, std::ios::binary) << bad;
    std::string warning;
    TimingCache c = read_cache_file(path, &warning);
    EXPECT_EQ(c.size(), 0u);
    EXPECT_NE(warning.find("timing cache ignored"), std::string::npos) << warning;
    EXPECT_EQ(warning.find('\n'), std::string::npos);  // one line
  }
  // Writing replaces the damaged file with a valid one.
  ASSERT_TRUE(write_cache_file(path, a));
  std::string warning;
  EXPECT_EQ(read_cache_file(path, &warning).size(), 1u);
  EXPECT_EQ(warning, "");
}

TEST(TunerCacheFile, UnwritablePathIsAnErrorNamingIt) {
  // A folder that is a file: unwritable for every user, root included.
  const std::string path = temp_dir() + "/file/t.cache";
  std::ofstream(path.substr(0, path.size() - 8)) << "x";
  TimingCache a;
  ASSERT_TRUE(a.record("dev", "sig1", {"p", 1.0, 3}));
  Status s = write_cache_file(path, a);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kiln::tuning
