// CPU kernels of the random family: RandomUniform(Like), RandomNormal(Like), Bernoulli.
//
// The values come from kiln's own generator, a SplitMix64 stream (53-bit uniform doubles in
// [0, 1), Box-Muller for normals). With the `seed` attribute a node draws the same values on
// every run and on every machine; without it each run starts from a fresh seed. The values do
// NOT match numpy's, PyTorch's or onnxruntime's generators for the same seed: only the
// distribution, shape and type follow the ONNX spec. (The onnx node tests of these ops compare
// against numpy.random draws, so they fail on values by design; run_suite notes why.)
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t state_;
};

// The node's seed: the `seed` attribute's bits, or a fresh one per run.
SplitMix64 generator(const Node& n) {
  if (n.has_attr("seed")) {
    const double seed = n.attr_float("seed", 0.0f);
    uint64_t bits = 0;
    std::memcpy(&bits, &seed, sizeof bits);
    return SplitMix64(bits);
  }
  static std::atomic<uint64_t> counter{0};
  const uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return SplitMix64(t ^ (counter.fetch_add(1) * 0xD1B54A32D192ED03ULL) ^ std::random_device{}());
}

// Fills the float tensor `out` with f() per element.
template <class F>
Status fill(KernelContext& ctx, Tensor& out, F&& f) {
  Status s = visit_dtype(out.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = out.mutable_data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = static_cast<T>(static_cast<compute_t<T>>(f()));
  });
  return s ? s : ctx.fail("output '", ctx.node().outputs[0]->name, "': ", s.message());
}

Status uniform(KernelContext& ctx) {
  const double low = ctx.node().attr_float("low", 0.0f), high = ctx.node().attr_float("high", 1.0f);
  if (!(low <= high)) return ctx.fail("low ", low, " must not exceed high ", high);
  SplitMix64 g = generator(ctx.node());
  return fill(ctx, ctx.output(0), [&] { return low + (high - low) * g.uniform(); });
}

Status normal(KernelContext& ctx) {
  const double mean = ctx.node().attr_float("mean", 0.0f), scale = ctx.node().attr_float("scale", 1.0f);
  if (!(scale >= 0)) return ctx.fail("scale ", scale, " must be nonnegative");
  SplitMix64 g = generator(ctx.node());
  bool have_spare = false;
  double spare = 0;
  return fill(ctx, ctx.output(0), [&] {
    if (have_spare) {
      have_spare = false;
      return mean + scale * spare;
    }
    const double u1 = 1.0 - g.uniform(), u2 = g.uniform();  // u1 in (0, 1]
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
    spare = r * std::sin(a);
    have_spare = true;
    return mean + scale * r * std::cos(a);
  });
}

// Bernoulli: 1 where a uniform draw falls below the probability, else 0.
Status bernoulli(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& out = ctx.output(0);
  SplitMix64 g = generator(ctx.node());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double p = x.get_as_double(i);
    if (!(p >= 0 && p <= 1))
      return ctx.fail("input '", ctx.node().inputs[0]->name, "' holds ", p, " at element ", i,
                      "; probabilities must be in [0, 1]");
  }
  Status s = visit_dtype(out.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = out.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      p[i] = static_cast<T>(static_cast<compute_t<T>>(g.uniform() < x.get_as_double(i) ? 1 : 0));
  });
  return s ? s : ctx.fail("output '", ctx.node().outputs[0]->name, "': ", s.message());
}

}  // namespace

void register_random_kernels(KernelTable& t) {
  t.add("", "RandomUniform", uniform);
  t.add("", "RandomUniformLike", uniform);
  t.add("", "RandomNormal", normal);
  t.add("", "RandomNormalLike", normal);
  t.add("", "Bernoulli", bernoulli);
}

}  // namespace kiln::cpu
