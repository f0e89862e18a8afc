// CPU kernels of the elementwise family's multi-input ops: variadic Sum/Mean/Max/Min (1..N
// broadcast inputs), Where and Clip.
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/kernels/elementwise_loops.h"

namespace kiln::cpu {

namespace {

// Folds every input into an accumulator of the output's shape (in compute_t, so float16 sums
// are not rounded at every step), then stores finish(acc) into the output.
template <class Set, class Combine, class Finish>
Status fold_inputs(KernelContext& ctx, Combine combine, Finish finish) {
  Tensor& y = ctx.output(0);
  Status s = visit_set(ctx.input(0).dtype(), Set{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    std::vector<C> acc(static_cast<size_t>(y.numel()));
    for (size_t k = 0; k < ctx.num_inputs(); ++k) {
      const Tensor& x = ctx.input(k);
      const T* px = x.data<T>();
      for_each_broadcast<1>(y.dims(), {x.dims()}, [&](int64_t i, const std::array<int64_t, 1>& o) {
        C v = static_cast<C>(px[o[0]]);
        acc[i] = k == 0 ? v : combine(acc[i], v);
      });
    }
    T* py = y.mutable_data<T>();
    for (size_t i = 0; i < acc.size(); ++i) py[i] = static_cast<T>(finish(acc[i]));
  });
  return s.with_context(ctx.node().label() + ": ");
}

// numpy.maximum/minimum semantics: a NaN operand gives NaN.
template <class C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(v);
  return false;
}

Status sum(KernelContext& c) {
  return fold_inputs<FloatTypes>(c, [](auto a, auto b) { return a + b; }, [](auto a) { return a; });
}
Status mean(KernelContext& c) {
  const double n = static_cast<double>(c.num_inputs());
  return fold_inputs<FloatTypes>(c, [](auto a, auto b) { return a + b; },
                                 [n](auto a) { return static_cast<decltype(a)>(a / n); });
}
Status max_(KernelContext& c) {
  return fold_inputs<NumericTypes>(c, [](auto a, auto b) { return (a < b || is_nan(b)) ? b : a; },
                                   [](auto a) { return a; });
}
Status min_(KernelContext& c) {
  return fold_inputs<NumericTypes>(c, [](auto a, auto b) { return (b < a || is_nan(b)) ? b : a; },
                                   [](auto a) { return a; });
}

Status where(KernelContext& ctx) {
  const Tensor& cond = ctx.input(0);
  const Tensor& a = ctx.input(1);
  const Tensor& b = ctx.input(2);
  Tensor& y = ctx.output(0);
  Status s = visit_dtype(a.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const bool* pc = cond.data<bool>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.mutable_data<T>();
    for_each_broadcast<3>(y.dims(), {cond.dims(), a.dims(), b.dims()},
                          [&](int64_t i, const std::array<int64_t, 3>& o) { py[i] = pc[o[0]] ? pa[o[1]] : pb[o[2]]; });
  });
  return s.with_context(ctx.node().label() + ": ");
}

// The bound from input i (opset 11+) or attribute `key` (before 11); `fallback` when absent.
template <class T, class C = compute_t<T>>
C clip_bound(const KernelContext& ctx, size_t i, const char* key, C fallback) {
  if (ctx.opset() < 11) {
    if (!ctx.node().has_attr(key)) return fallback;
    return static_cast<C>(ctx.node().attr_float(key, 0.0f));
  }
  if (!ctx.has_input(i) || ctx.input(i).numel() == 0) return fallback;
  return static_cast<C>(ctx.input(i).data<T>()[0]);
}

Status clip(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  for (size_t i = 1; i < 3; ++i)
    if (ctx.has_input(i) && ctx.input(i).numel() > 1)
      return ctx.fail("input ", i, " must be a scalar, got ", ctx.input(i).describe());
  Tensor& y = ctx.output(0);
  Status s = visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const C lo = clip_bound<T>(ctx, 1, "min", std::numeric_limits<C>::lowest());
    const C hi = clip_bound<T>(ctx, 2, "max", std::numeric_limits<C>::max());
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    // max then min, like numpy.clip: when min > max every element becomes max.
    for (int64_t i = 0; i < x.numel(); ++i) {
      C v = static_cast<C>(px[i]);
      v = v < lo ? lo : v;
      py[i] = static_cast<T>(v > hi ? hi : v);
    }
  });
  return s.with_context(ctx.node().label() + ": ");
}

}  // namespace

void register_elementwise_variadic_kernels(KernelTable& t) {
  t.add("", "Sum", sum);
  t.add("", "Mean", mean);
  t.add("", "Max", max_);
  t.add("", "Min", min_);
  t.add("", "Where", where);
  t.add("", "Clip", clip);
}

}  // namespace kiln::cpu
