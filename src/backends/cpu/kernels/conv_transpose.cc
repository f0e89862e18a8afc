// ConvTranspose on the CPU (conv family): per (image, group) one GEMM col = W^T * X through
// OpenBLAS, then col2im scatters col into the output window positions, then the bias.
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/gemm.h"
#include "ir/ops/conv_window.h"

namespace kiln::cpu {

namespace {

// Adds col[(m, kernel offset), input position] into y's channels at o = i*s - pad + k*d.
template <class C>
void col2im(const Window& w, const C* col, int64_t channels, C* y) {
  const size_t nd = w.nd;
  const int64_t in_size = dims_product(w.in), out_size = dims_product(w.out), kprod = dims_product(w.kernel);
  const int64_t last_in = w.in[nd - 1], last_out = w.out[nd - 1];
  const int64_t outer = last_in ? in_size / last_in : 0;
  std::vector<int64_t> kk(nd), ii(nd);
  for (int64_t c = 0; c < channels; ++c) {
    C* dst = y + c * out_size;
    for (int64_t kidx = 0; kidx < kprod; ++kidx) {
      for (int64_t r = kidx, d = int64_t(nd) - 1; d >= 0; --d) { kk[d] = r % w.kernel[d]; r /= w.kernel[d]; }
      const C* src = col + (c * kprod + kidx) * in_size;
      for (int64_t q = 0; q < outer; ++q) {
        for (int64_t r = q, d = int64_t(nd) - 2; d >= 0; --d) { ii[d] = r % w.in[d]; r /= w.in[d]; }
        int64_t off = 0;
        bool inside = true;
        for (size_t d = 0; d + 1 < nd; ++d) {
          int64_t o = ii[d] * w.strides[d] - w.pads[d] + kk[d] * w.dilations[d];
          inside &= o >= 0 && o < w.out[d];
          off = off * w.out[d] + o;
        }
        if (!inside) continue;
        off *= last_out;
        const C* row = src + q * last_in;
        for (int64_t iw = 0; iw < last_in; ++iw) {
          int64_t ow = iw * w.strides[nd - 1] - w.pads[nd - 1] + kk[nd - 1] * w.dilations[nd - 1];
          if (ow >= 0 && ow < last_out) dst[off + ow] += row[iw];
        }
      }
    }
  }
}

// X [N, C, *in], W [C, M/group, *k], y [N, M, *out].
template <class C>
void conv_transpose_forward(const Window& win, int64_t batch, int64_t c, int64_t m, int64_t group, const C* x,
                            const C* w, const C* bias, C* y) {
  const int64_t cg = c / group, mg = m / group, kprod = dims_product(win.kernel);
  const int64_t in_size = dims_product(win.in), out_size = dims_product(win.out);
  std::vector<C> col(static_cast<size_t>(mg * kprod * in_size));
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t g = 0; g < group; ++g) {
      gemm<C>(true, false, mg * kprod, in_size, cg, C(1), w + g * cg * mg * kprod, mg * kprod,
              x + (n * c + g * cg) * in_size, in_size, C(0), col.data(), in_size);
      col2im<C>(win, col.data(), mg, y + (n * m + g * mg) * out_size);
    }
    if (bias)
      for (int64_t k = 0; k < m; ++k)
        for (int64_t i = 0; i < out_size; ++i) y[(n * m + k) * out_size + i] += bias[k];
  }
}

Status conv_transpose(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const int64_t group = ctx.node().attr_int("group", 1);
  if (x.rank() < 3 || w.rank() != x.rank() || group < 1 || x.dim(1) != w.dim(0) || x.dim(1) % group)
    return ctx.fail("input ", x.describe(), " and weights ", w.describe(), " do not fit group ", group);
  const int64_t m = w.dim(1) * group;
  if (b && (b->rank() != 1 || b->dim(0) != m)) return ctx.fail("bias ", b->describe(), " must have ", m, " elements");
  std::vector<int64_t> kernel = conv_kernel_shape(ctx.node(), w.dims());
  if (!std::equal(kernel.begin(), kernel.end(), w.dims().begin() + 2, w.dims().end()))
    return ctx.fail("kernel_shape does not match weights ", w.describe());
  auto win = resolve_transpose_window(ctx.node(), std::vector<int64_t>(x.dims().begin() + 2, x.dims().end()), kernel);
  if (!win) return ctx.fail(win.status().message());
  Tensor& y = ctx.output(0);
  Status st = visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    if constexpr (std::is_same_v<T, C>) {
      conv_transpose_forward<T>(*win, x.dim(0), x.dim(1), m, group, x.data<T>(), w.data<T>(),
                                b ? b->data<T>() : nullptr, y.mutable_data<T>());
    } else {
      auto xc = to_compute<C>(x.data<T>(), x.numel()), wc = to_compute<C>(w.data<T>(), w.numel());
      std::vector<C> bc = b ? to_compute<C>(b->data<T>(), b->numel()) : std::vector<C>();
      std::vector<C> yc(static_cast<size_t>(y.numel()));
      conv_transpose_forward<C>(*win, x.dim(0), x.dim(1), m, group, xc.data(), wc.data(), b ? bc.data() : nullptr,
                                yc.data());
      T* py = y.mutable_data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(yc[i]);
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

}  // namespace

void register_conv_transpose_kernels(KernelTable& t) { t.add("", "ConvTranspose", conv_transpose); }

}  // namespace kiln::cpu
