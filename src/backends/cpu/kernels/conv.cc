// CPU kernels of the conv family: Conv as im2col + one GEMM per (image, group) through
// OpenBLAS (1x1 stride-1 unpadded convs skip im2col), and ConvInteger/QLinearConv, which
// subtract zero points into double and reuse the same path (exact for 8-bit operands).
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/gemm.h"
#include "ir/ops/conv_window.h"

namespace kiln::cpu {

void register_conv_transpose_kernels(KernelTable& t);
void register_col2im_kernels(KernelTable& t);
void register_deform_conv_kernels(KernelTable& t);
void register_causal_conv_kernels(KernelTable& t);

namespace {

struct ConvGeom {
  Window win;
  int64_t batch = 0, c = 0, m = 0, group = 1;
  int64_t in_size = 0, out_size = 0, kprod = 0;
};

Expected<ConvGeom> conv_geometry(const Node& n, const Tensor& x, const Tensor& w, const Tensor* bias) {
  ConvGeom g;
  if (x.rank() < 3 || w.rank() != x.rank()) return err("input ", x.describe(), " and weights ", w.describe(), " do not match");
  g.batch = x.dim(0);
  g.c = x.dim(1);
  g.m = w.dim(0);
  g.group = n.attr_int("group", 1);
  if (g.group < 1 || g.c % g.group || g.m % g.group || w.dim(1) * g.group != g.c)
    return err("channels of input ", x.describe(), " and weights ", w.describe(), " do not fit group ", g.group);
  std::vector<int64_t> kernel = conv_kernel_shape(n, w.dims());
  if (!std::equal(kernel.begin(), kernel.end(), w.dims().begin() + 2, w.dims().end()))
    return err("kernel_shape does not match weights ", w.describe());
  KILN_ASSIGN_OR_RETURN(g.win, resolve_window(n, std::vector<int64_t>(x.dims().begin() + 2, x.dims().end()), kernel, false));
  if (bias && (bias->rank() != 1 || bias->dim(0) != g.m)) return err("bias ", bias->describe(), " must have ", g.m, " elements");
  g.in_size = dims_product(g.win.in);
  g.out_size = dims_product(g.win.out);
  g.kprod = dims_product(g.win.kernel);
  return g;
}

// Unfolds `channels` channels of one image into col[(c, kernel offset), output position].
template <class C>
void im2col(const Window& w, const C* x, int64_t channels, C* col) {
  const size_t nd = w.nd;
  const int64_t in_size = dims_product(w.in), out_size = dims_product(w.out), kprod = dims_product(w.kernel);
  const int64_t last_out = w.out[nd - 1], last_in = w.in[nd - 1];
  const int64_t s_last = w.strides[nd - 1], p_last = w.pads[nd - 1], d_last = w.dilations[nd - 1];
  const int64_t outer = last_out ? out_size / last_out : 0;
  std::vector<int64_t> kk(nd), oo(nd);
  for (int64_t c = 0; c < channels; ++c) {
    const C* src = x + c * in_size;
    for (int64_t kidx = 0; kidx < kprod; ++kidx) {
      for (int64_t r = kidx, d = int64_t(nd) - 1; d >= 0; --d) { kk[d] = r % w.kernel[d]; r /= w.kernel[d]; }
      C* dst = col + (c * kprod + kidx) * out_size;
      for (int64_t q = 0; q < outer; ++q) {
        // Input offset of this output row's window position along all but the last dim.
        for (int64_t r = q, d = int64_t(nd) - 2; d >= 0; --d) { oo[d] = r % w.out[d]; r /= w.out[d]; }
        int64_t off = 0;
        bool inside = true;
        for (size_t d = 0; d + 1 < nd; ++d) {
          int64_t i = oo[d] * w.strides[d] - w.pads[d] + kk[d] * w.dilations[d];
          inside &= i >= 0 && i < w.in[d];
          off = off * w.in[d] + i;
        }
        off *= last_in;
        C* row = dst + q * last_out;
        for (int64_t ow = 0; ow < last_out; ++ow) {
          int64_t iw = ow * s_last - p_last + kk[nd - 1] * d_last;
          row[ow] = inside && iw >= 0 && iw < last_in ? src[off + iw] : C(0);
        }
      }
    }
  }
}

template <class C>
void conv_forward(const ConvGeom& g, const C* x, const C* w, const C* bias, C* y, GemmEngine engine = GemmEngine::kBlas) {
  const int64_t cg = g.c / g.group, mg = g.m / g.group, kdim = cg * g.kprod;
  bool pointwise = true;
  for (size_t d = 0; d < g.win.nd; ++d)
    pointwise &= g.win.kernel[d] == 1 && g.win.strides[d] == 1 && g.win.pads[d] == 0 && g.win.pads[d + g.win.nd] == 0;
  std::vector<C> col(pointwise ? 0 : static_cast<size_t>(kdim * g.out_size));
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t grp = 0; grp < g.group; ++grp) {
      const C* xg = x + (n * g.c + grp * cg) * g.in_size;
      if (!pointwise) im2col<C>(g.win, xg, cg, col.data());
      gemm<C>(false, false, mg, g.out_size, kdim, C(1), w + grp * mg * kdim, kdim, pointwise ? xg : col.data(),
              g.out_size, C(0), y + (n * g.m + grp * mg) * g.out_size, g.out_size, engine);
    }
    if (bias)
      for (int64_t m = 0; m < g.m; ++m) {
        C* ym = y + (n * g.m + m) * g.out_size;
        for (int64_t i = 0; i < g.out_size; ++i) ym[i] += bias[m];
      }
  }
}

Status conv(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  auto g = conv_geometry(ctx.node(), x, w, b);
  if (!g) return ctx.fail(g.status().message());
  Tensor& y = ctx.output(0);
  Status st = visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    if constexpr (std::is_same_v<T, C>) {
      conv_forward<T>(*g, x.data<T>(), w.data<T>(), b ? b->data<T>() : nullptr, y.mutable_data<T>(), ctx.gemm_engine());
    } else {
      auto xc = to_compute<C>(x.data<T>(), x.numel()), wc = to_compute<C>(w.data<T>(), w.numel());
      std::vector<C> bc = b ? to_compute<C>(b->data<T>(), b->numel()) : std::vector<C>();
      std::vector<C> yc(static_cast<size_t>(y.numel()));
      conv_forward<C>(*g, xc.data(), wc.data(), b ? bc.data() : nullptr, yc.data(), ctx.gemm_engine());
      T* py = y.mutable_data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(yc[i]);
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

// x - x_zero_point (per tensor) and w - w_zero_point (per tensor or per output channel) in double,
// convolved; the result has one double per output element.
Expected<std::vector<double>> integer_conv(const Node& n, const Tensor& x, const Tensor* xzp, const Tensor& w,
                                           const Tensor* wzp, ConvGeom& g) {
  KILN_ASSIGN_OR_RETURN(g, conv_geometry(n, x, w, nullptr));
  if (xzp && xzp->numel() != 1) return err("x_zero_point must be a scalar");
  if (wzp && wzp->numel() != 1 && wzp->numel() != g.m) return err("w_zero_point must have 1 or ", g.m, " elements");
  std::vector<double> xd(static_cast<size_t>(x.numel())), wd(static_cast<size_t>(w.numel()));
  const double zx = xzp ? xzp->get_as_double(0) : 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) xd[i] = x.get_as_double(i) - zx;
  const int64_t per_m = w.numel() / std::max<int64_t>(g.m, 1);
  for (int64_t i = 0; i < w.numel(); ++i)
    wd[i] = w.get_as_double(i) - (wzp ? wzp->get_as_double(wzp->numel() == 1 ? 0 : i / per_m) : 0.0);
  std::vector<double> y(static_cast<size_t>(g.batch * g.m * g.out_size));
  conv_forward<double>(g, xd.data(), wd.data(), nullptr, y.data());
  return y;
}

Status conv_integer(KernelContext& ctx) {
  ConvGeom g;
  auto y = integer_conv(ctx.node(), ctx.input(0), ctx.has_input(2) ? &ctx.input(2) : nullptr, ctx.input(1),
                        ctx.has_input(3) ? &ctx.input(3) : nullptr, g);
  if (!y) return ctx.fail(y.status().message());
  int32_t* py = ctx.output(0).mutable_data<int32_t>();
  for (size_t i = 0; i < y->size(); ++i) py[i] = static_cast<int32_t>((*y)[i]);
  return Status::ok();
}

Status qlinear_conv(KernelContext& ctx) {
  for (size_t i : {1, 2, 4, 5, 6, 7})
    if (ctx.input(i).numel() < 1) return ctx.fail("scale/zero point input ", i, " is empty");
  ConvGeom g;
  auto y = integer_conv(ctx.node(), ctx.input(0), &ctx.input(2), ctx.input(3), &ctx.input(5), g);
  if (!y) return ctx.fail(y.status().message());
  const Tensor &xs = ctx.input(1), &ws = ctx.input(4);
  const Tensor* b = ctx.has_input(8) ? &ctx.input(8) : nullptr;
  if (ws.numel() != 1 && ws.numel() != g.m) return ctx.fail("w_scale must have 1 or ", g.m, " elements");
  if (b && b->numel() != g.m) return ctx.fail("bias must have ", g.m, " elements");
  const double ys = ctx.input(6).get_as_double(0), yz = ctx.input(7).get_as_double(0);
  if (ys == 0) return ctx.fail("y_scale is zero");
  Tensor& out = ctx.output(0);
  return visit_dtype(out.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      T* py = out.mutable_data<T>();
      for (size_t i = 0; i < y->size(); ++i) {
        int64_t m = (int64_t(i) / g.out_size) % g.m;
        double acc = (*y)[i] + (b ? b->get_as_double(m) : 0.0);
        // The combined multiplier in float, as runtimes compute it.
        float mult = float(xs.get_as_double(0)) * float(ws.get_as_double(ws.numel() == 1 ? 0 : m)) / float(ys);
        double v = std::nearbyint(double(float(acc) * mult)) + yz;
        if (std::isnan(v)) v = 0;  // casting NaN to an integer is undefined
        v = std::min<double>(std::max<double>(v, std::numeric_limits<T>::min()), std::numeric_limits<T>::max());
        py[i] = static_cast<T>(v);
      }
    }
  });
}

}  // namespace

void register_conv_kernels(KernelTable& t) {
  register_col2im_kernels(t);
  register_deform_conv_kernels(t);
  register_causal_conv_kernels(t);
  t.add("", "Conv", conv);
  t.add("", "ConvInteger", conv_integer);
  t.add("", "QLinearConv", qlinear_conv);
  register_conv_transpose_kernels(t);
}

}  // namespace kiln::cpu
