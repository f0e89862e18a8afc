// CPU kernels of the pool family. Every windowed pool walks the same window enumeration
// (for_each_window) over each (image, channel) plane and reduces the valid input elements.
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_table.h"
#include "ir/ops/conv_window.h"

namespace kiln::cpu {

void register_pool_extra_kernels(KernelTable& t);

namespace {

// Calls f(out_index, in_indices, padded_count) for each output position of one plane:
// in_indices are the row-major plane offsets of the window elements inside the input;
// padded_count also counts window elements on explicit padding (count_include_pad).
template <class F>
void for_each_window(const Window& w, F&& f) {
  const size_t nd = w.nd;
  const int64_t out_size = dims_product(w.out), kprod = dims_product(w.kernel);
  std::vector<int64_t> oo(nd, 0), start(nd), kk(nd);
  std::vector<int64_t> idx;
  idx.reserve(static_cast<size_t>(kprod));
  for (int64_t o = 0; o < out_size; ++o) {
    int64_t padded = 1;
    for (size_t d = 0; d < nd; ++d) {
      start[d] = oo[d] * w.strides[d] - w.pads[d];
      int64_t n = 0;
      for (int64_t k = 0; k < w.kernel[d]; ++k) n += start[d] + k * w.dilations[d] < w.in[d] + w.pads[d + nd];
      padded *= n;
    }
    idx.clear();
    for (int64_t kidx = 0; kidx < kprod; ++kidx) {
      for (int64_t r = kidx, d = int64_t(nd) - 1; d >= 0; --d) { kk[d] = r % w.kernel[d]; r /= w.kernel[d]; }
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < nd && inside; ++d) {
        int64_t i = start[d] + kk[d] * w.dilations[d];
        inside = i >= 0 && i < w.in[d];
        off = off * w.in[d] + i;
      }
      if (inside) idx.push_back(off);
    }
    f(o, idx, padded);
    for (size_t d = nd; d-- > 0;) {
      if (++oo[d] < w.out[d]) break;
      oo[d] = 0;
    }
  }
}

Expected<Window> pool_window(const Node& n, const Tensor& x) {
  if (x.rank() < 3) return err("input must have rank >= 3, got ", x.describe());
  return resolve_window(n, std::vector<int64_t>(x.dims().begin() + 2, x.dims().end()), n.attr_ints("kernel_shape"),
                        n.attr_int("ceil_mode", 0) != 0);
}

// Row-major plane offset -> column-major offset (MaxPool storage_order=1).
int64_t column_major(int64_t off, const std::vector<int64_t>& dims) {
  int64_t out = 0, mul = 1;
  std::vector<int64_t> idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) { idx[d] = off % dims[d]; off /= dims[d]; }
  for (size_t d = 0; d < dims.size(); ++d) { out += idx[d] * mul; mul *= dims[d]; }
  return out;
}

Status max_pool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  auto w = pool_window(ctx.node(), x);
  if (!w) return ctx.fail(w.status().message());
  Tensor& y = ctx.output(0);
  int64_t* ind = ctx.has_output(1) ? ctx.output(1).mutable_data<int64_t>() : nullptr;
  const bool col_major = ctx.node().attr_int("storage_order", 0) != 0;
  const int64_t planes = x.dim(0) * x.dim(1), in_size = dims_product(w->in), out_size = dims_product(w->out);
  Status st = visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = x.data<T>() + p * in_size;
      T* yp = y.mutable_data<T>() + p * out_size;
      for_each_window(*w, [&](int64_t o, const std::vector<int64_t>& idx, int64_t) {
        C best = std::numeric_limits<C>::lowest();
        int64_t at = -1;
        for (int64_t i : idx)
          if (at < 0 || static_cast<C>(xp[i]) > best) { best = static_cast<C>(xp[i]); at = i; }
        yp[o] = static_cast<T>(best);
        if (ind) ind[p * out_size + o] = at < 0 ? -1 : p * in_size + (col_major ? column_major(at, w->in) : at);
      });
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

// Average and Lp pools: reduce(values of the window, padded_count) -> output.
template <class Reduce>
Status float_pool(KernelContext& ctx, Reduce reduce) {
  const Tensor& x = ctx.input(0);
  auto w = pool_window(ctx.node(), x);
  if (!w) return ctx.fail(w.status().message());
  Tensor& y = ctx.output(0);
  const int64_t planes = x.dim(0) * x.dim(1), in_size = dims_product(w->in), out_size = dims_product(w->out);
  std::vector<double> vals;
  Status st = visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = x.data<T>() + p * in_size;
      T* yp = y.mutable_data<T>() + p * out_size;
      for_each_window(*w, [&](int64_t o, const std::vector<int64_t>& idx, int64_t padded) {
        vals.clear();
        for (int64_t i : idx) vals.push_back(static_cast<double>(static_cast<compute_t<T>>(xp[i])));
        yp[o] = static_cast<T>(static_cast<compute_t<T>>(reduce(vals, padded)));
      });
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

Status average_pool(KernelContext& ctx) {
  const bool include_pad = ctx.node().attr_int("count_include_pad", 0) != 0;
  return float_pool(ctx, [&](const std::vector<double>& v, int64_t padded) {
    double s = 0;
    for (double a : v) s += a;
    int64_t n = include_pad ? padded : static_cast<int64_t>(v.size());
    return n ? s / double(n) : 0.0;
  });
}

double lp_norm(const std::vector<double>& v, double p) {
  double s = 0;
  for (double a : v) s += std::pow(std::fabs(a), p);
  return std::pow(s, 1.0 / p);
}

Status lp_pool(KernelContext& ctx) {
  const double p = ctx.node().attr_float("p", 2.0f);  // a float attribute before opset 2
  if (p <= 0) return ctx.fail("p must be positive");
  return float_pool(ctx, [&](const std::vector<double>& v, int64_t) { return lp_norm(v, p); });
}

// Global pools: reduce each (n, c) plane to one value.
template <class Reduce>
Status global_pool(KernelContext& ctx, Reduce reduce) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t planes = x.rank() >= 2 ? x.dim(0) * x.dim(1) : 0;
  const int64_t size = planes ? x.numel() / planes : 0;
  std::vector<double> vals(static_cast<size_t>(size));
  Status st = visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = x.data<T>() + p * size;
      for (int64_t i = 0; i < size; ++i) vals[i] = static_cast<double>(static_cast<compute_t<T>>(xp[i]));
      y.mutable_data<T>()[p] = static_cast<T>(static_cast<compute_t<T>>(reduce(vals)));
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

Status global_average_pool(KernelContext& ctx) {
  return global_pool(ctx, [](const std::vector<double>& v) {
    double s = 0;
    for (double a : v) s += a;
    return v.empty() ? 0.0 : s / double(v.size());
  });
}

Status global_max_pool(KernelContext& ctx) {
  return global_pool(ctx, [](const std::vector<double>& v) {
    double m = -std::numeric_limits<double>::infinity();
    for (double a : v) m = std::max(m, a);
    return m;
  });
}

Status global_lp_pool(KernelContext& ctx) {
  const double p = ctx.node().attr_float("p", 2.0f);  // a float attribute before opset 2
  if (p <= 0) return ctx.fail("p must be positive");
  return global_pool(ctx, [&](const std::vector<double>& v) { return lp_norm(v, p); });
}

}  // namespace

void register_pool_kernels(KernelTable& t) {
  t.add("", "MaxPool", max_pool);
  t.add("", "AveragePool", average_pool);
  t.add("", "LpPool", lp_pool);
  t.add("", "GlobalAveragePool", global_average_pool);
  t.add("", "GlobalMaxPool", global_max_pool);
  t.add("", "GlobalLpPool", global_lp_pool);
  register_pool_extra_kernels(t);
}

}  // namespace kiln::cpu
