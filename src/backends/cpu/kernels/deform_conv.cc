// CPU kernel of DeformConv (conv family, opsets 19/22), 2-D as in the ONNX reference: each
// kernel tap samples the input at its regular position plus a learned offset, bilinearly with
// zeros outside the image, scaled by an optional mask, then weighted like Conv.
#include <cmath>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "ir/ops/conv_window.h"

namespace kiln::cpu {

namespace {

// Bilinear sample of plane `img` (H x W) at (h, w); taps outside the image count as zero.
double bilinear_zero(const double* img, int64_t H, int64_t W, double h, double w) {
  if (!std::isfinite(h) || !std::isfinite(w) || h <= -1 || h >= double(H) || w <= -1 || w >= double(W)) return 0.0;
  const int64_t h0 = int64_t(std::floor(h)), w0 = int64_t(std::floor(w));
  const double th = h - double(h0), tw = w - double(w0);
  auto at = [&](int64_t y, int64_t x) { return (y >= 0 && y < H && x >= 0 && x < W) ? img[y * W + x] : 0.0; };
  return at(h0, w0) * (1 - th) * (1 - tw) + at(h0, w0 + 1) * (1 - th) * tw + at(h0 + 1, w0) * th * (1 - tw) +
         at(h0 + 1, w0 + 1) * th * tw;
}

std::vector<double> doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.get_as_double(i);
  return v;
}

Status deform_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& off = ctx.input(2);
  Tensor& y = ctx.output(0);
  if (x.rank() != 4 || w.rank() != 4) return ctx.fail("only 2-D DeformConv is supported");
  const int64_t N = x.dim(0), IC = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OC = w.dim(0), KH = w.dim(2), KW = w.dim(3), OH = y.dim(2), OW = y.dim(3);
  const int64_t group = ctx.node().attr_int("group", 1), og = ctx.node().attr_int("offset_group", 1);
  auto win = resolve_window(ctx.node(), {H, W}, {KH, KW}, false);
  if (!win) return ctx.fail(win.status().message());
  if (IC % group != 0 || IC % og != 0 || w.dim(1) * group != IC || OC % group != 0)
    return ctx.fail("channels do not fit group ", group, " and offset_group ", og);
  const int64_t K = KH * KW;
  if (off.rank() != 4 || off.dim(0) != N || off.dim(1) != og * 2 * K || off.dim(2) != OH || off.dim(3) != OW)
    return ctx.fail("offset ", off.describe(), " does not fit offset_group ", og, " and the kernel");
  const bool has_mask = ctx.has_input(4);
  if (has_mask && ctx.input(4).numel() != N * og * K * OH * OW) return ctx.fail("mask has the wrong size");
  const int64_t icpg = IC / group, ocpg = OC / group, icpog = IC / og;
  const std::vector<double> xv = doubles(x), wv = doubles(w), ov = doubles(off);
  const std::vector<double> mv = has_mask ? doubles(ctx.input(4)) : std::vector<double>{};
  const std::vector<double> bv = ctx.has_input(3) ? doubles(ctx.input(3)) : std::vector<double>(size_t(OC), 0.0);
  if (int64_t(bv.size()) != OC) return ctx.fail("bias must have ", OC, " values");
  std::vector<double> out(size_t(y.numel()));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double acc = bv[size_t(oc)];
          const int64_t g = oc / ocpg;
          for (int64_t icg = 0; icg < icpg; ++icg) {
            const int64_t ic = g * icpg + icg, ogi = ic / icpog;
            const double* plane = &xv[size_t((n * IC + ic) * H * W)];
            for (int64_t k = 0; k < K; ++k) {
              const int64_t kh = k / KW, kw = k % KW;
              const int64_t obase = ((n * og + ogi) * K + k) * 2;  // offset channel of (dh, dw)
              const double dh = ov[size_t((obase * OH + i) * OW + j)], dw = ov[size_t(((obase + 1) * OH + i) * OW + j)];
              const double ph = double(i * win->strides[0] - win->pads[0] + kh * win->dilations[0]) + dh;
              const double pw = double(j * win->strides[1] - win->pads[1] + kw * win->dilations[1]) + dw;
              double v = bilinear_zero(plane, H, W, ph, pw);
              if (has_mask) v *= mv[size_t((((n * og + ogi) * K + k) * OH + i) * OW + j)];
              acc += v * wv[size_t(((oc * icpg + icg) * KH + kh) * KW + kw)];
            }
          }
          out[size_t(((n * OC + oc) * OH + i) * OW + j)] = acc;
        }
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t e = 0; e < y.numel(); ++e) py[e] = static_cast<T>(static_cast<compute_t<T>>(out[size_t(e)]));
  });
}

}  // namespace

void register_deform_conv_kernels(KernelTable& t) { t.add("", "DeformConv", deform_conv); }

}  // namespace kiln::cpu
