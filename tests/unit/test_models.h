// What the engine, fault and load tests (CPU and GPU) share: a small builder of ONNX models (a
// graph input with symbolic dims such as "N", initializers given or drawn from a seeded generator,
// nodes with INT / INTS attributes), a logger that keeps every error, building an engine with a
// profile for input "x", and the load tests' loop (many threads on one engine for a bounded time,
// memory sampled after a warm-up). Header-only and without CUDA, so a test that uses it can still
// be built alone (e.g. under a sanitizer).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/kiln.h"
#include "onnx/onnx_pb.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define KILN_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KILN_TEST_SANITIZED 1
#endif

namespace kiln::test {

// Sanitizer builds keep freed memory and reserve shadow memory: memory limits and checks don't hold.
#ifdef KILN_TEST_SANITIZED
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// ---- Models --------------------------------------------------------------------------------

// Graph-level shorthands: a float32 input with static dims, a float32 initializer (float_data),
// a node `op`(inputs) -> out named out + "_node", an INTS attribute.
inline void add_float_input(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims) {
  auto* x = g->add_input();
  x->set_name(name);
  auto* tt = x->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}
inline void add_float_initializer(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims,
                                  const std::vector<float>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float f : values) t->add_float_data(f);
}
inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& inputs,
                                 const std::string& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(out + "_node");
  for (const auto& i : inputs) n->add_input(i);
  n->add_output(out);
  return n;
}
inline void add_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
  auto* at = n->add_attribute();
  at->set_name(name);
  at->set_type(onnx::AttributeProto_AttributeType_INTS);
  for (int64_t v : values) at->add_ints(v);
}

// One dim of a graph input or output: a size, or the name of a symbolic one ("N", "batch").
struct Dim {
  int64_t value = 0;
  std::string param;
  Dim(int v) : value(v) {}
  Dim(int64_t v) : value(v) {}
  Dim(const char* p) : param(p) {}
};

// An INT (one value) or INTS (a list) node attribute.
struct Attr {
  std::string name;
  bool list;
  std::vector<int64_t> values;
  Attr(std::string n, int64_t v) : name(std::move(n)), list(false), values{v} {}
  Attr(std::string n, std::vector<int64_t> v) : name(std::move(n)), list(true), values(std::move(v)) {}
};

// Uniform random floats in [lo, hi) from one seeded generator, drawn in order across initializers.
struct Uniform {
  std::mt19937 rng;
  std::uniform_real_distribution<float> u;
  Uniform(unsigned seed, float lo, float hi) : rng(seed), u(lo, hi) {}
  std::vector<float> take(int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = u(rng);
    return v;
  }
};

// Where an initializer's floats go: repeated float_data, or one raw_data string.
enum class Storage { kFloatData, kRawData };

// An ONNX model under construction: IR version 8, the default domain at `opset`.
class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17) {
    m_.set_ir_version(8);
    m_.add_opset_import()->set_version(opset);
  }
  onnx::GraphProto* graph() { return m_.mutable_graph(); }

  ModelBuilder& add_input(const std::string& name, const std::vector<Dim>& dims,
                          int32_t type = onnx::TensorProto_DataType_FLOAT) {
    set_type(graph()->add_input(), name, dims, type);
    return *this;
  }
  // An output by name only (its type left to inference), or typed.
  ModelBuilder& add_output(const std::string& name) {
    graph()->add_output()->set_name(name);
    return *this;
  }
  ModelBuilder& add_output(const std::string& name, const std::vector<Dim>& dims,
                           int32_t type = onnx::TensorProto_DataType_FLOAT) {
    set_type(graph()->add_output(), name, dims, type);
    return *this;
  }

  // A float32 initializer holding `values` (none: the caller fills it, e.g. with external data).
  onnx::TensorProto* add_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<float>& values, Storage storage = Storage::kFloatData) {
    auto* t = tensor(name, dims, onnx::TensorProto_DataType_FLOAT);
    if (storage == Storage::kRawData)
      t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    else
      for (float f : values) t->add_float_data(f);
    return t;
  }
  // A float32 initializer of the next numel(dims) draws of `fill`.
  onnx::TensorProto* add_initializer(const std::string& name, const std::vector<int64_t>& dims, Uniform& fill,
                                     Storage storage = Storage::kFloatData) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return add_initializer(name, dims, fill.take(n), storage);
  }
  // A float32 initializer whose `length` bytes lie in the file `location` (next to the model).
  onnx::TensorProto* add_external_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                              const std::string& location, size_t length) {
    auto* t = tensor(name, dims, onnx::TensorProto_DataType_FLOAT);
    t->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"location", location},
                                     {"length", std::to_string(length)}}) {
      auto* kv = t->add_external_data();
      kv->set_key(key);
      kv->set_value(value);
    }
    return t;
  }
  onnx::TensorProto* add_int64_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                           const std::vector<int64_t>& values) {
    auto* t = tensor(name, dims, onnx::TensorProto_DataType_INT64);
    for (int64_t v : values) t->add_int64_data(v);
    return t;
  }

  // `op`(inputs) -> out, named `name` (default out + "_node").
  onnx::NodeProto* add_node(const std::string& op, const std::vector<std::string>& inputs, const std::string& out,
                            const std::vector<Attr>& attrs = {}, const std::string& name = "") {
    auto* n = test::add_node(graph(), op, inputs, out);
    if (!name.empty()) n->set_name(name);
    for (const Attr& a : attrs) {
      if (a.list) {
        add_ints(n, a.name, a.values);
      } else {
        auto* at = n->add_attribute();
        at->set_name(a.name);
        at->set_type(onnx::AttributeProto_AttributeType_INT);
        at->set_i(a.values[0]);
      }
    }
    return n;
  }

  std::string bytes() const { return m_.SerializeAsString(); }

 private:
  static void set_type(onnx::ValueInfoProto* v, const std::string& name, const std::vector<Dim>& dims, int32_t type) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(type);
    auto* shape = tt->mutable_shape();
    for (const Dim& d : dims) {
      if (d.param.empty())
        shape->add_dim()->set_dim_value(d.value);
      else
        shape->add_dim()->set_dim_param(d.param);
    }
  }
  onnx::TensorProto* tensor(const std::string& name, const std::vector<int64_t>& dims, int32_t type) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    return t;
  }

  onnx::ModelProto m_;
};

// The load tests' model, a small CNN: Conv+Relu, Conv + residual Add + Relu, GlobalAveragePool,
// Flatten, MatMul + bias, Softmax. x: [N,c,h,w] -> y: [N,classes]; `f` filters; weights uniform
// in [-0.5, 0.5) from seed 1234.
inline std::string small_cnn(int64_t c, int64_t h, int64_t w, int64_t f, int64_t classes) {
  ModelBuilder m;
  m.add_input("x", {"N", c, h, w}).add_output("y");
  Uniform u(1234, -0.5f, 0.5f);
  m.add_initializer("w1", {f, c, 3, 3}, u);
  m.add_initializer("b1", {f}, u);
  m.add_initializer("w2", {f, f, 3, 3}, u);
  m.add_initializer("b2", {f}, u);
  m.add_initializer("wf", {f, classes}, u);
  m.add_initializer("bf", {classes}, u);
  const Attr pads{"pads", std::vector<int64_t>{1, 1, 1, 1}};
  m.add_node("Conv", {"x", "w1", "b1"}, "c1", {pads});
  m.add_node("Relu", {"c1"}, "r1");
  m.add_node("Conv", {"r1", "w2", "b2"}, "c2", {pads});
  m.add_node("Add", {"c2", "r1"}, "s2");
  m.add_node("Relu", {"s2"}, "r2");
  m.add_node("GlobalAveragePool", {"r2"}, "p");
  m.add_node("Flatten", {"p"}, "f");
  m.add_node("MatMul", {"f", "wf"}, "l");
  m.add_node("Add", {"l", "bf"}, "lb");
  m.add_node("Softmax", {"lb"}, "y");
  return m.bytes();
}

// ---- Logging -------------------------------------------------------------------------------

// Keeps every error (and worse) it is given; safe to share between threads.
struct CaptureLogger : Logger {
  std::vector<std::string> errors;
  void log(Severity s, const char* m) noexcept override {
    if (s > Severity::kERROR) return;
    std::lock_guard<std::mutex> l(mu_);
    errors.push_back(m);
  }
  std::string first() const {
    std::lock_guard<std::mutex> l(mu_);
    return errors.empty() ? "" : errors.front();
  }
  std::string last() const {
    std::lock_guard<std::mutex> l(mu_);
    return errors.empty() ? "" : errors.back();
  }
  std::string all() const {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const auto& e : errors) s += (s.empty() ? "" : " | ") + e;
    return s;
  }
  size_t count() const {
    std::lock_guard<std::mutex> l(mu_);
    return errors.size();
  }

 private:
  mutable std::mutex mu_;
};

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- Engines -------------------------------------------------------------------------------

// Parses `onnx` (a failed expectation if it does not parse) and builds a serialized engine for
// `backend`, with one optimization profile for input "x" when `min` is given (which must be
// profile 0); configure(cfg) may set more first.
inline std::vector<uint8_t> build_engine(CaptureLogger& log, const std::string& onnx, BackendKind backend,
                                         const Dims& min = {}, const Dims& opt = {}, const Dims& max = {},
                                         const std::function<void(BuilderConfig&)>& configure = nullptr) {
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parse(onnx.data(), onnx.size())) << log.all();
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(backend);
  if (configure) configure(*cfg);
  if (!min.empty()) {
    OptimizationProfile prof;
    prof.setDimensions("x", OptProfileSelector::kMIN, min);
    prof.setDimensions("x", OptProfileSelector::kOPT, opt);
    prof.setDimensions("x", OptProfileSelector::kMAX, max);
    EXPECT_EQ(cfg->addOptimizationProfile(prof), 0);
  }
  return b.buildSerializedNetwork(*net, *cfg);
}

// ---- Load ----------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

// KILN_LOAD_SECONDS, else 10.
inline double load_seconds() {
  const char* s = std::getenv("KILN_LOAD_SECONDS");
  double v = s ? std::atof(s) : 0;
  return v > 0 ? v : 10.0;
}

// Resident memory of this process (/proc/self/statm); 0 if unknown.
inline size_t resident_bytes() {
  unsigned long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// The load tests' inputs: `n` cases of batch 1 + (i * 5) % max_batch, each batch item `per_item`
// floats uniform in [-1, 1) from seed 99.
struct LoadInput {
  int64_t batch;
  std::vector<float> x;
};
inline std::vector<LoadInput> load_inputs(int n, int64_t max_batch, int64_t per_item) {
  Uniform u(99, -1.f, 1.f);
  std::vector<LoadInput> inputs;
  for (int i = 0; i < n; ++i) {
    const int64_t batch = 1 + (i * 5) % max_batch;
    inputs.push_back({batch, u.take(batch * per_item)});
  }
  return inputs;
}

// What the load threads did, and the first problem any of them saw.
struct Tally {
  std::atomic<long> runs{0}, mismatches{0}, failures{0}, contexts{0}, engines{0};
  std::mutex mu;
  std::string first_problem;
  void problem(const std::string& p) {
    std::lock_guard<std::mutex> l(mu);
    if (first_problem.empty()) first_problem = p;
  }
  void fail(const std::string& p) {
    ++failures;
    problem(p);
  }
};

// A quantity sampled under load: its first sample after the warm-up and its peak after it.
struct Growth {
  size_t at_warm = 0, peak = 0;
  void sample(size_t v) {
    if (!at_warm) at_warm = v;
    peak = std::max(peak, v);
  }
};

// Runs work(thread, deadline) on `threads` threads for `seconds`, calling sample() every 50 ms
// once the warm-up (the first quarter) is over.
template <class Work, class Sample>
void run_threads(int threads, double seconds, Work work, Sample sample) {
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto warm = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds / 4));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&, i] { work(i, deadline); });
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (Clock::now() >= warm) sample();
  }
  for (auto& th : pool) th.join();
}

// A load test's fixture: its logger, the engine's bytes and the engine loaded from them.
class LoadTest : public ::testing::Test {
 protected:
  CaptureLogger log_;
  std::vector<uint8_t> plan_;
  std::unique_ptr<Engine> engine_;
};

// The two load patterns, as one thread's work; run_case(ctx, index) runs case `index` of `cases`
// on ctx and tallies it.
// One context for the whole run; case (thread * 7 + i * 3) % cases on the i-th run.
template <class RunCase>
void one_context_each(Engine& engine, Tally& t, int thread, Clock::time_point deadline, int cases, RunCase run_case) {
  auto ctx = engine.createExecutionContext();
  if (!ctx) return t.fail("createExecutionContext failed");
  ++t.contexts;
  for (long i = 0; Clock::now() < deadline; ++i) run_case(*ctx, static_cast<int>((thread * 7 + i * 3) % cases));
}
// Each round a new context, run 1 to 3 times and dropped; on the engine fresh() loads for the
// round when it is given, else on `engine`.
template <class RunCase>
void contexts_come_and_go(Engine& engine, Tally& t, int thread, Clock::time_point deadline, int cases,
                          RunCase run_case, const std::function<std::unique_ptr<Engine>()>& fresh = nullptr) {
  for (long round = 0; Clock::now() < deadline; ++round) {
    std::unique_ptr<Engine> own;
    if (fresh) {
      own = fresh();
      if (!own) return t.fail("deserialize failed");
      ++t.engines;
    }
    auto ctx = (own ? *own : engine).createExecutionContext();
    if (!ctx) return t.fail("createExecutionContext failed");
    ++t.contexts;
    for (long i = 0; i < 1 + (round + thread) % 3; ++i)
      run_case(*ctx, static_cast<int>((thread * 5 + round * 3 + i) % cases));
  }
}

}  // namespace kiln::test
