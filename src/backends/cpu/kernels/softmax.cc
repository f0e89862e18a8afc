// CPU kernels of Softmax, LogSoftmax and Hardmax. The input is viewed as [outer, n, inner]:
// before opset 13 the op works on the input coerced to 2D at `axis` (n = everything from
// `axis` on, inner = 1); from 13 on it works along the single dimension `axis`.
#include <cmath>
#include <vector>

#include "backends/cpu/kernels/elementwise_loops.h"
#include "ir/ops/shape_rules.h"

namespace kiln::cpu {

namespace {

struct RowLayout { int64_t outer = 1, n = 1, inner = 1; };

Expected<RowLayout> row_layout(const KernelContext& ctx, const Tensor& x) {
  const bool legacy = ctx.opset() < 13;
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", legacy ? 1 : -1);
  if (!(legacy && axis == rank)) {
    auto a = normalize_axis(axis, rank);
    if (!a) return ctx.fail(a.status().message());
    axis = *a;
  }
  RowLayout l;
  for (int64_t d = 0; d < rank; ++d) {
    int64_t& part = d < axis ? l.outer : (d == axis || legacy) ? l.n : l.inner;
    part *= x.dim(d);
  }
  return l;
}

// Calls row(values) for every row (n values along the axis) and writes back what it leaves.
template <class Row>
Status for_each_row(KernelContext& ctx, Row row) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  KILN_ASSIGN_OR_RETURN(RowLayout l, row_layout(ctx, x));
  Status s = visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    std::vector<double> v(static_cast<size_t>(l.n));
    for (int64_t o = 0; o < l.outer; ++o) {
      for (int64_t in = 0; in < l.inner; ++in) {
        const int64_t base = o * l.n * l.inner + in;
        for (int64_t k = 0; k < l.n; ++k) v[k] = static_cast<double>(static_cast<compute_t<T>>(px[base + k * l.inner]));
        row(v);
        for (int64_t k = 0; k < l.n; ++k) py[base + k * l.inner] = static_cast<T>(static_cast<compute_t<T>>(v[k]));
      }
    }
  });
  return s.with_context(ctx.node().label() + ": ");
}

// Subtracts the row max (for stability) and returns log(sum(exp(v - max))).
double shift_and_log_sum_exp(std::vector<double>& v) {
  double m = -INFINITY;
  for (double x : v) m = std::max(m, x);
  double sum = 0;
  for (double& x : v) { x -= m; sum += std::exp(x); }
  return std::log(sum);
}

Status softmax(KernelContext& ctx) {
  return for_each_row(ctx, [](std::vector<double>& v) {
    double lse = shift_and_log_sum_exp(v);
    for (double& x : v) x = std::exp(x - lse);
  });
}

Status log_softmax(KernelContext& ctx) {
  return for_each_row(ctx, [](std::vector<double>& v) {
    double lse = shift_and_log_sum_exp(v);
    for (double& x : v) x -= lse;
  });
}

// 1 at the first maximum of each row, 0 elsewhere.
Status hardmax(KernelContext& ctx) {
  return for_each_row(ctx, [](std::vector<double>& v) {
    size_t best = 0;
    for (size_t k = 1; k < v.size(); ++k) if (v[k] > v[best]) best = k;
    for (size_t k = 0; k < v.size(); ++k) v[k] = k == best ? 1.0 : 0.0;
  });
}

}  // namespace

void register_softmax_kernels(KernelTable& t) {
  t.add("", "Softmax", softmax);
  t.add("", "LogSoftmax", log_softmax);
  t.add("", "Hardmax", hardmax);
}

}  // namespace kiln::cpu
