// CPU kernels of the reduce family that walk one axis: ArgMax/ArgMin and CumSum.
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/reduce_axes.h"

namespace kiln::cpu {

namespace {

std::vector<bool> one_axis_mask(size_t rank, int64_t axis) {
  std::vector<bool> mask(rank, false);
  mask[static_cast<size_t>(axis)] = true;
  return mask;
}

// `better(a, b)` says whether a beats the current best b; ties keep the first index unless
// select_last_index is set.
template <class Better>
Status arg_kernel(KernelContext& ctx, Better better) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < -rank || axis >= rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  const bool last = ctx.node().attr_int("select_last_index", 0) != 0;
  const AxisGroups g = split_axes(x.dims(), one_axis_mask(x.rank(), axis));
  if (g.reduced.empty()) return ctx.fail("cannot take ", ctx.node().op_type, " over an empty axis");
  int64_t* py = ctx.output(0).mutable_data<int64_t>();
  return visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* px = x.data<T>();
    for (size_t o = 0; o < g.kept.size(); ++o) {
      int64_t best = 0;
      C bv = static_cast<C>(px[g.kept[o]]);
      for (size_t j = 1; j < g.reduced.size(); ++j) {
        C v = static_cast<C>(px[g.kept[o] + g.reduced[j]]);
        if (better(v, bv) || (last && v == bv)) {
          bv = v;
          best = static_cast<int64_t>(j);
        }
      }
      py[o] = best;
    }
  });
}

Status arg_max(KernelContext& c) { return arg_kernel(c, [](auto a, auto b) { return a > b; }); }
Status arg_min(KernelContext& c) { return arg_kernel(c, [](auto a, auto b) { return a < b; }); }

// y[i] = sum (CumSum) or product (CumProd, opset 24) of x along the axis up to i (inclusive, or
// exclusive), from either end.
Status cumulative(KernelContext& ctx, bool product) {
  const Tensor& x = ctx.input(0);
  const Tensor& axis_t = ctx.input(1);
  if (axis_t.numel() != 1) return ctx.fail("axis must hold one value, got ", axis_t.describe());
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = axis_t.get_as_int64(0);
  if (axis < -rank || axis >= rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  const bool exclusive = ctx.node().attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.node().attr_int("reverse", 0) != 0;
  const AxisGroups g = split_axes(x.dims(), one_axis_mask(x.rank(), axis));
  Tensor& y = ctx.output(0);
  return visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    using A = std::conditional_t<std::is_floating_point_v<C>, double, C>;
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    const size_t n = g.reduced.size();
    for (size_t o = 0; o < g.kept.size(); ++o) {
      A acc = product ? A(1) : A(0);
      auto combine = [&](A v) { acc = product ? A(acc * v) : A(acc + v); };
      for (size_t step = 0; step < n; ++step) {
        const size_t j = reverse ? n - 1 - step : step;
        const int64_t off = g.kept[o] + g.reduced[j];
        const A v = static_cast<A>(static_cast<C>(px[off]));
        if (!exclusive) combine(v);
        py[off] = static_cast<T>(static_cast<C>(acc));
        if (exclusive) combine(v);
      }
    }
  });
}

Status cumsum(KernelContext& ctx) { return cumulative(ctx, false); }
Status cumprod(KernelContext& ctx) { return cumulative(ctx, true); }

}  // namespace

void register_arg_kernels(KernelTable& t) {
  t.add("", "ArgMax", arg_max);
  t.add("", "ArgMin", arg_min);
  t.add("", "CumSum", cumsum);
  t.add("", "CumProd", cumprod);
}

}  // namespace kiln::cpu
