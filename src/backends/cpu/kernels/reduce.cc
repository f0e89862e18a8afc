// CPU kernels of the reduce family. Every Reduce* op gathers the elements of one output's
// reduced group into a buffer and folds it with a small function; floats accumulate in double,
// integers in 64 bits. Empty groups give each op's identity (sum 0, prod 1, max -inf/lowest).
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/reduce_axes.h"
#include "ir/ops/reduce_params.h"

namespace kiln::cpu {

namespace {

// Wide accumulator: double for floats, int64/uint64 for integers.
template <class C>
using acc_t = std::conditional_t<std::is_floating_point_v<C>, double,
                                 std::conditional_t<std::is_signed_v<C>, int64_t, uint64_t>>;

// Integer accumulation wraps like unsigned arithmetic instead of overflowing (UB for signed).
template <class A>
A wrap_add(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else return a + b;
}
template <class A>
A wrap_mul(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else return a * b;
}

// The reduced-axes mask of a Reduce* node (see ir/ops/reduce_params.h).
Expected<std::vector<bool>> reduce_mask(const KernelContext& ctx, size_t rank, bool* noop) {
  return reduce_axes_mask(ctx.node(), ctx.has_input(1) ? &ctx.input(1) : nullptr, rank, noop);
}

// The kept/reduced offsets of a Reduce* node, or nullopt (output already set to the input) when
// noop_with_empty_axes applies.
Expected<std::optional<AxisGroups>> reduce_groups(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  bool noop = false;
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, x.rank(), &noop));
  if (noop) {
    ctx.set_output(0, x);
    return std::optional<AxisGroups>();
  }
  AxisGroups g = split_axes(x.dims(), mask);
  if (static_cast<int64_t>(g.kept.size()) != ctx.output(0).numel()) return ctx.fail("output size mismatch");
  return std::optional<AxisGroups>(std::move(g));
}

// Runs `fold(values)` for every output element; values are the group's elements as C.
template <class Fold>
Status reduce_kernel(KernelContext& ctx, Fold fold) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(std::optional<AxisGroups> groups, reduce_groups(ctx));
  if (!groups) return Status::ok();  // noop_with_empty_axes: the output is the input
  const AxisGroups& g = *groups;
  Tensor& y = ctx.output(0);
  return visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    std::vector<C> vals(g.reduced.size());
    for (size_t o = 0; o < g.kept.size(); ++o) {
      for (size_t j = 0; j < g.reduced.size(); ++j) vals[j] = static_cast<C>(px[g.kept[o] + g.reduced[j]]);
      py[o] = static_cast<T>(fold(vals));
    }
  });
}

template <class C>
acc_t<C> sum_of(const std::vector<C>& v) {
  acc_t<C> s = 0;
  for (C x : v) s = wrap_add(s, static_cast<acc_t<C>>(x));
  return s;
}

template <class C>
double sum_squares(const std::vector<C>& v) {
  double s = 0;
  for (C x : v) s += static_cast<double>(x) * static_cast<double>(x);
  return s;
}

// Result type of folds that must return C (or something static_cast-able to T).
template <class C>
C to_c(double d) {
  if constexpr (std::is_floating_point_v<C>) return static_cast<C>(d);
  else return static_cast<C>(std::isfinite(d) ? d : 0.0);  // no UB on inf/nan -> int
}

Status reduce_sum(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) { return sum_of(v); });
}
Status reduce_mean(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    if constexpr (std::is_floating_point_v<C>) return static_cast<double>(sum_of(v)) / static_cast<double>(v.size());
    else return v.empty() ? acc_t<C>(0) : acc_t<C>(sum_of(v) / static_cast<acc_t<C>>(v.size()));
  });
}
// Bool ReduceMax/ReduceMin (opset 20): any / all, so an empty group gives false / true.
Status reduce_bool(KernelContext& ctx, bool is_max) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(std::optional<AxisGroups> groups, reduce_groups(ctx));
  if (!groups) return Status::ok();  // noop_with_empty_axes: the output is the input
  const AxisGroups& g = *groups;
  Tensor& y = ctx.output(0);
  const bool* px = x.data<bool>();
  bool* py = y.mutable_data<bool>();
  for (size_t o = 0; o < g.kept.size(); ++o) {
    bool r = !is_max;
    for (int64_t off : g.reduced) r = is_max ? (r || px[g.kept[o] + off]) : (r && px[g.kept[o] + off]);
    py[o] = r;
  }
  return Status::ok();
}

Status reduce_max(KernelContext& c) {
  if (c.input(0).dtype() == DataType::kBool) return reduce_bool(c, true);
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    C m = std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::lowest();
    for (C x : v) m = (x > m || x != x) ? x : m;  // NaN propagates
    return m;
  });
}
Status reduce_min(KernelContext& c) {
  if (c.input(0).dtype() == DataType::kBool) return reduce_bool(c, false);
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    C m = std::numeric_limits<C>::has_infinity ? std::numeric_limits<C>::infinity() : std::numeric_limits<C>::max();
    for (C x : v) m = (x < m || x != x) ? x : m;
    return m;
  });
}
Status reduce_prod(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    acc_t<C> p = 1;
    for (C x : v) p = wrap_mul(p, static_cast<acc_t<C>>(x));
    return p;
  });
}
Status reduce_l1(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    acc_t<C> s = 0;
    for (C x : v) s = wrap_add(s, static_cast<acc_t<C>>(x < C(0) ? C(-x) : x));
    return s;
  });
}
Status reduce_l2(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    return to_c<C>(std::sqrt(sum_squares(v)));
  });
}
Status reduce_sum_square(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    acc_t<C> s = 0;
    for (C x : v) s = wrap_add(s, wrap_mul(static_cast<acc_t<C>>(x), static_cast<acc_t<C>>(x)));
    return s;
  });
}
Status reduce_log_sum(KernelContext& c) {
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    return to_c<C>(std::log(static_cast<double>(sum_of(v))));
  });
}
Status reduce_log_sum_exp(KernelContext& c) {
  // Shifted by the group's max so large inputs do not overflow exp.
  return reduce_kernel(c, [](const auto& v) {
    using C = typename std::decay_t<decltype(v)>::value_type;
    double m = -std::numeric_limits<double>::infinity();
    for (C x : v) m = std::max(m, static_cast<double>(x));
    if (!std::isfinite(m)) return to_c<C>(m);
    double s = 0;
    for (C x : v) s += std::exp(static_cast<double>(x) - m);
    return to_c<C>(m + std::log(s));
  });
}

}  // namespace

void register_arg_kernels(KernelTable& t);  // kernels/arg_cumsum.cc

void register_reduce_kernels(KernelTable& t) {
  t.add("", "ReduceSum", reduce_sum);
  t.add("", "ReduceMean", reduce_mean);
  t.add("", "ReduceMax", reduce_max);
  t.add("", "ReduceMin", reduce_min);
  t.add("", "ReduceProd", reduce_prod);
  t.add("", "ReduceL1", reduce_l1);
  t.add("", "ReduceL2", reduce_l2);
  t.add("", "ReduceSumSquare", reduce_sum_square);
  t.add("", "ReduceLogSum", reduce_log_sum);
  t.add("", "ReduceLogSumExp", reduce_log_sum_exp);
  register_arg_kernels(t);
}

}  // namespace kiln::cpu
