// CPU kernels for GridSample and RoiAlign (resize family). Both sample a 2-D feature map at
// fractional positions; they follow PyTorch's grid_sampler_2d and onnxruntime's RoiAlign,
// which the ONNX conformance outputs were produced with.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

struct GridParams {
  std::string mode, padding;
  bool align_corners = false;
};

double unnormalize(double c, int64_t size, bool align) {
  return align ? (c + 1) / 2 * double(size - 1) : ((c + 1) * double(size) - 1) / 2;
}

// Reflects `c` into [twice_low/2, twice_high/2] (PyTorch reflect_coordinates).
double reflect(double c, double twice_low, double twice_high) {
  if (twice_low == twice_high) return 0;
  double lo = twice_low / 2, span = (twice_high - twice_low) / 2;
  c = std::fabs(c - lo);
  double extra = std::fmod(c, span);
  // The parity in double: far-out (finite) coordinates overflow int64 (undefined behaviour).
  const double flips = std::floor(c / span);
  return std::fmod(flips, 2.0) == 0 ? extra + lo : span - extra + lo;
}

// Applies border/reflection padding to a source coordinate (zeros padding leaves it as is).
double pad_coord(double c, int64_t size, const GridParams& p) {
  if (p.padding == "border") return std::clamp(c, 0.0, double(size - 1));
  if (p.padding == "reflection") {
    c = p.align_corners ? reflect(c, 0, 2.0 * double(size - 1)) : reflect(c, -1, 2.0 * double(size) - 1);
    return std::clamp(c, 0.0, double(size - 1));
  }
  return c;
}

double cubic_w(double t, int k) {
  const double A = -0.75;
  auto near = [&](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto far = [&](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  switch (k) {
    case 0: return far(t + 1);
    case 1: return near(t);
    case 2: return near(1 - t);
    default: return far(2 - t);
  }
}

// One output value of GridSample for image `img` (H x W) at unnormalized (x, y).
double grid_value(const double* img, int64_t H, int64_t W, double x, double y, const GridParams& p) {
  if (!std::isfinite(x) || !std::isfinite(y)) return 0.0;
  if (p.padding == "zeros") {  // far outside, every tap is padding; clamping keeps casts in range
    x = std::clamp(x, -double(W) - 3, double(W) + 3);
    y = std::clamp(y, -double(H) - 3, double(H) + 3);
  }
  auto at = [&](int64_t yy, int64_t xx) {
    return (yy >= 0 && yy < H && xx >= 0 && xx < W) ? img[yy * W + xx] : 0.0;
  };
  if (p.mode == "bicubic") {
    // Padding applies per tap here, as in PyTorch's get_value_bounded.
    double x0 = std::floor(x), y0 = std::floor(y), tx = x - x0, ty = y - y0, acc = 0;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        double yy = pad_coord(y0 - 1 + i, H, p), xx = pad_coord(x0 - 1 + j, W, p);
        acc += cubic_w(ty, i) * cubic_w(tx, j) * at(int64_t(yy), int64_t(xx));
      }
    return acc;
  }
  x = pad_coord(x, W, p);
  y = pad_coord(y, H, p);
  if (p.mode == "nearest") return at(int64_t(std::nearbyint(y)), int64_t(std::nearbyint(x)));
  int64_t x0 = int64_t(std::floor(x)), y0 = int64_t(std::floor(y));
  double tx = x - double(x0), ty = y - double(y0);
  return at(y0, x0) * (1 - tx) * (1 - ty) + at(y0, x0 + 1) * tx * (1 - ty) + at(y0 + 1, x0) * (1 - tx) * ty +
         at(y0 + 1, x0 + 1) * tx * ty;
}

// N-d (opset 20) nearest and linear sampling of `img` (spatial dims `dims`) at unnormalized
// coordinates `c` (spatial order, outermost first); same padding rules as the 2-D path.
double grid_value_nd(const double* img, const std::vector<int64_t>& dims, std::vector<double> c, const GridParams& p) {
  const size_t r = dims.size();
  for (size_t d = 0; d < r; ++d) {
    if (!std::isfinite(c[d])) return 0.0;
    if (p.padding == "zeros") c[d] = std::clamp(c[d], -double(dims[d]) - 3, double(dims[d]) + 3);
    c[d] = pad_coord(c[d], dims[d], p);
  }
  auto at = [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) {
      if (idx[d] < 0 || idx[d] >= dims[d]) return 0.0;
      off = off * dims[d] + idx[d];
    }
    return img[off];
  };
  std::vector<int64_t> idx(r);
  if (p.mode == "nearest") {
    for (size_t d = 0; d < r; ++d) idx[d] = int64_t(std::nearbyint(c[d]));
    return at(idx);
  }
  double acc = 0;
  for (size_t corner = 0; corner < (size_t(1) << r); ++corner) {  // each of the 2^r neighbours
    double w = 1;
    for (size_t d = 0; d < r; ++d) {
      const double lo = std::floor(c[d]), t = c[d] - lo;
      const bool hi = (corner >> d) & 1;
      idx[d] = int64_t(lo) + (hi ? 1 : 0);
      w *= hi ? t : 1 - t;
    }
    if (w != 0) acc += w * at(idx);
  }
  return acc;
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.get_as_double(i);
  return v;
}

Status store_doubles(Tensor& y, const std::vector<double>& v) {
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(static_cast<compute_t<T>>(v[size_t(i)]));
  });
}

// Opset 20 renamed the modes (bilinear -> linear, bicubic -> cubic) and allowed any number of
// spatial dims; cubic stays 2-D only, as in the ONNX reference's tests.
Status grid_sample(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  Tensor& y = ctx.output(0);
  if (grid.dim(0) != x.dim(0)) return ctx.fail("grid batch ", grid.dim(0), " != X batch ", x.dim(0));
  GridParams p{ctx.node().attr_string("mode", "bilinear"), ctx.node().attr_string("padding_mode", "zeros"),
               ctx.node().attr_int("align_corners", 0) != 0};
  if (p.mode == "linear") p.mode = "bilinear";
  if (p.mode == "cubic") p.mode = "bicubic";
  const size_t r = x.rank() - 2;
  if (p.mode == "bicubic" && r != 2) return ctx.fail("cubic mode needs 2 spatial dims, got ", r);
  std::vector<int64_t> dims(x.dims().begin() + 2, x.dims().end());
  int64_t in_sp = 1, out_sp = 1;
  for (int64_t d : dims) in_sp *= d;
  for (size_t d = 1; d + 1 < grid.rank(); ++d) out_sp *= grid.dim(d);
  const int64_t N = x.dim(0), C = x.dim(1);
  // An empty image (a spatial dim of 0): every sample is padding, and there is no pixel to
  // index (the loops below would take &in[k] of an empty vector, and clamp to [0, -1]).
  if (in_sp == 0) return store_doubles(y, std::vector<double>(size_t(y.numel()), 0.0));
  std::vector<double> in = to_doubles(x), g = to_doubles(grid), out(size_t(y.numel())), c(r);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t i = 0; i < out_sp; ++i) {
        // The grid lists coordinates innermost axis first (x, y, z).
        const double* gp = &g[size_t((n * out_sp + i) * int64_t(r))];
        for (size_t d = 0; d < r; ++d) c[d] = unnormalize(gp[r - 1 - d], dims[d], p.align_corners);
        const double* img = &in[size_t((n * C + ch) * in_sp)];
        out[size_t((n * C + ch) * out_sp + i)] =
            p.mode == "bicubic" ? grid_value(img, dims[0], dims[1], c[1], c[0], p) : grid_value_nd(img, dims, c, p);
      }
  return store_doubles(y, out);
}

// AffineGrid (opset 20): each output position's normalized base coordinates (x, y[, z], 1) --
// pixel centers in [-1, 1], or the corners with align_corners -- times theta [N, nd, nd + 1].
Status affine_grid(KernelContext& ctx) {
  const Tensor& theta = ctx.input(0);
  Tensor& y = ctx.output(0);
  const size_t nd = y.rank() - 2;
  const bool align = ctx.node().attr_int("align_corners", 0) != 0;
  const int64_t N = y.dim(0);
  if (theta.rank() != 3 || theta.dim(0) != N || theta.dim(1) != int64_t(nd) || theta.dim(2) != int64_t(nd) + 1)
    return ctx.fail("theta ", theta.describe(), " does not fit ", nd, " spatial dims");
  std::vector<int64_t> dims(y.dims().begin() + 1, y.dims().end() - 1);  // spatial, outermost first
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  auto base = [&](int64_t i, int64_t size) {
    if (align) return size == 1 ? -1.0 : -1.0 + 2.0 * double(i) / double(size - 1);
    return -1.0 + (2.0 * double(i) + 1.0) / double(size);
  };
  const std::vector<double> th = to_doubles(theta);
  std::vector<double> out(size_t(y.numel())), homo(nd + 1);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < count; ++p) {
      int64_t rem = p;
      for (size_t d = nd; d-- > 0;) {  // homo lists the innermost axis first: (x, y, z)
        homo[nd - 1 - d] = base(rem % dims[d], dims[d]);
        rem /= dims[d];
      }
      homo[nd] = 1.0;
      for (size_t k = 0; k < nd; ++k) {
        double acc = 0;
        for (size_t j = 0; j <= nd; ++j) acc += th[size_t((n * int64_t(nd) + int64_t(k)) * int64_t(nd + 1)) + j] * homo[j];
        out[size_t((n * count + p) * int64_t(nd)) + k] = acc;
      }
    }
  return store_doubles(y, out);
}

// Bilinear sample as onnxruntime's RoiAlign computes it (clamps near edges, 0 far outside).
double roi_bilinear(const double* img, int64_t H, int64_t W, double y, double x, bool take_max, double* max_tap) {
  if (!(y >= -1.0 && y <= double(H) && x >= -1.0 && x <= double(W))) { *max_tap = 0; return 0; }  // also NaN
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t y0 = int64_t(y), x0 = int64_t(x), y1, x1;
  if (y0 >= H - 1) { y0 = y1 = H - 1; y = double(y0); } else { y1 = y0 + 1; }
  if (x0 >= W - 1) { x0 = x1 = W - 1; x = double(x0); } else { x1 = x0 + 1; }
  double ly = y - double(y0), lx = x - double(x0), hy = 1 - ly, hx = 1 - lx;
  double a = hy * hx * img[y0 * W + x0], b = hy * lx * img[y0 * W + x1], c = ly * hx * img[y1 * W + x0],
         d = ly * lx * img[y1 * W + x1];
  if (take_max) *max_tap = std::max(std::max(a, b), std::max(c, d));
  return a + b + c + d;
}

Status roi_align(KernelContext& ctx) {
  const Node& n = ctx.node();
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& batch = ctx.input(2);
  Tensor& y = ctx.output(0);
  const int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
  const int64_t PH = n.attr_int("output_height", 1), PW = n.attr_int("output_width", 1);
  const int64_t sampling = n.attr_int("sampling_ratio", 0);
  const double scale = n.attr_float("spatial_scale", 1.0f);
  const bool take_max = n.attr_string("mode", "avg") == "max";
  const bool half_pixel =
      n.attr_string("coordinate_transformation_mode", ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel") ==
      "half_pixel";
  if (batch.numel() != R) return ctx.fail("batch_indices has ", batch.numel(), " entries for ", R, " rois");
  std::vector<double> in = to_doubles(x), r = to_doubles(rois), out(size_t(y.numel()));
  const double off = half_pixel ? 0.5 : 0.0;
  for (int64_t k = 0; k < R; ++k) {
    int64_t b = batch.get_as_int64(k);
    if (b < 0 || b >= x.dim(0)) return ctx.fail("batch index ", b, " out of range [0, ", x.dim(0), ")");
    for (int64_t i = 0; i < 4; ++i)
      if (!std::isfinite(r[size_t(k * 4 + i)])) return ctx.fail("roi ", k, " has a non-finite coordinate");
    double x1 = r[size_t(k * 4)] * scale - off, y1 = r[size_t(k * 4 + 1)] * scale - off;
    double rw = r[size_t(k * 4 + 2)] * scale - off - x1, rh = r[size_t(k * 4 + 3)] * scale - off - y1;
    if (!half_pixel) { rw = std::max(rw, 1.0); rh = std::max(rh, 1.0); }
    double bh = rh / double(PH), bw = rw / double(PW);
    // The sampling grid is sampling_ratio, or ceil(bin size), points per side: a huge but finite
    // roi (1e30) or ratio would loop for ever, and past int64 the cast is undefined. Refused.
    constexpr double kMaxGrid = 1 << 16;
    if (sampling > 0 ? double(sampling) > kMaxGrid : !(std::fabs(bh) <= kMaxGrid && std::fabs(bw) <= kMaxGrid))
      return ctx.fail("roi ", k, ": sampling grid over ", kMaxGrid, " points per side (bins of ", bh, " x ", bw,
                      " pixels, sampling_ratio ", sampling, ")");
    int64_t gh = sampling > 0 ? sampling : int64_t(std::ceil(rh / double(PH)));
    int64_t gw = sampling > 0 ? sampling : int64_t(std::ceil(rw / double(PW)));
    double count = double(std::max<int64_t>(gh * gw, 1));
    for (int64_t c = 0; c < C; ++c) {
      const double* img = &in[size_t((b * C + c) * H * W)];
      for (int64_t ph = 0; ph < PH; ++ph)
        for (int64_t pw = 0; pw < PW; ++pw) {
          double acc = 0, best = 0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; ++iy)
            for (int64_t ix = 0; ix < gw; ++ix) {
              double yy = y1 + double(ph) * bh + (double(iy) + 0.5) * bh / double(gh);
              double xx = x1 + double(pw) * bw + (double(ix) + 0.5) * bw / double(gw);
              double tap = 0;
              acc += roi_bilinear(img, H, W, yy, xx, take_max, &tap);
              if (take_max) { best = first ? tap : std::max(best, tap); first = false; }
            }
          out[size_t(((k * C + c) * PH + ph) * PW + pw)] = take_max ? best : acc / count;
        }
    }
  }
  return store_doubles(y, out);
}

}  // namespace

void register_grid_sample_kernels(KernelTable& t) {
  t.add("", "GridSample", grid_sample);
  t.add("", "AffineGrid", affine_grid);
  t.add("", "RoiAlign", roi_align);
}

}  // namespace kiln::cpu
