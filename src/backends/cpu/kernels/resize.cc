// CPU kernels of the resize family: Resize and Upsample. GridSample and RoiAlign live in
// grid_sample.cc.
//
// Resize is separable: every mode weights input samples per axis independently, so the kernel
// resamples one axis at a time, last axis first, which reproduces the ONNX reference's
// recursive interpolate_nd exactly (including tf_crop_and_resize's extrapolation values).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "ir/ops/resize_params.h"

namespace kiln::cpu {

void register_grid_sample_kernels(KernelTable& t);

namespace {

struct ResizeAttrs {
  std::string mode = "nearest";
  std::string ctm = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
  bool legacy_nearest = false;  // opset <= 10 Resize / Upsample: floor up, ceil down
  bool antialias = false;       // opset 18: linear/cubic filters widen by 1/scale when downsampling
};

// For one output index along one axis: the input indices and weights, or "extrapolate".
struct Taps {
  bool extrapolate = false;
  std::vector<int64_t> idx;
  std::vector<double> w;
};

// Maps an output coordinate to the input coordinate (ONNX reference's interpolate_1d_with_x).
// Returns false when tf_crop_and_resize falls outside the input.
bool source_coord(const ResizeAttrs& a, int64_t x, double scale, int64_t in, int64_t out_int, double roi_start,
                  double roi_end, double* out) {
  const double out_len = scale * double(in);
  double xo = 0;
  if (a.ctm == "half_pixel_symmetric") {
    // Centers the sampled window when the output size was rounded from scale * in.
    const double offset = double(in) / 2 * (1 - double(out_int) / out_len);
    xo = offset + (double(x) + 0.5) / scale - 0.5;
  } else if (a.ctm == "align_corners") {
    xo = out_len == 1 ? 0.0 : double(x) * double(in - 1) / (out_len - 1);
  } else if (a.ctm == "asymmetric") {
    xo = double(x) / scale;
  } else if (a.ctm == "tf_half_pixel_for_nn") {
    xo = (double(x) + 0.5) / scale;
  } else if (a.ctm == "tf_crop_and_resize") {
    xo = out_len == 1 ? (roi_end - roi_start) * double(in - 1) / 2
                      : double(x) * (roi_end - roi_start) * double(in - 1) / (out_len - 1);
    xo += roi_start * double(in - 1);
    if (xo < 0 || xo > double(in - 1)) return false;
  } else if (a.ctm == "pytorch_half_pixel") {
    xo = out_len == 1 ? -0.5 : (double(x) + 0.5) / scale - 0.5;
  } else {  // half_pixel
    xo = (double(x) + 0.5) / scale - 0.5;
  }
  if (!std::isfinite(xo)) return false;
  // Far outside the input every tap is an edge sample; clamping keeps the integer casts in range.
  *out = std::clamp(xo, -double(in) - 4, double(in) + 4);
  return true;
}

std::vector<double> cubic_coeffs(double r, double A) {
  double s = 1 - r;
  return {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
          ((A + 2) * r - (A + 3)) * r * r + 1,
          ((A + 2) * s - (A + 3)) * s * s + 1,
          ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A};
}

// Picks the nearest input index; `r` is in (0, 1] measured from `lo` (the reference's convention).
int64_t nearest_index(const ResizeAttrs& a, int64_t lo, double r, bool integral, double scale) {
  if (integral) return lo + 1;
  if (a.legacy_nearest) return scale < 1 ? lo + 1 : lo;
  const std::string& m = a.nearest_mode;
  bool up = m == "ceil" || (m == "round_prefer_floor" && r > 0.5) || (m == "round_prefer_ceil" && r >= 0.5);
  return up ? lo + 1 : lo;
}

// Antialiased filters (the reference's _linear/_cubic_coeffs_antialias): the kernel is stretched
// by 1/scale when downsampling, over an even number of taps starting at offset `start` from lo + 1
// (the neighbour at or left of the coordinate is at offset 0), and normalized.
std::vector<double> antialias_coeffs(const ResizeAttrs& a, double r, double scale, int64_t* start) {
  scale = std::min(scale, 1.0);
  const bool cubic = a.mode == "cubic";
  *start = int64_t(std::floor((cubic ? -2.0 : -1.0) / scale)) + 1;
  const int64_t count = 2 - 2 * *start;
  std::vector<double> w;
  double sum = 0;
  for (int64_t k = 0; k < count; ++k) {
    const double x = std::abs(scale * (double(*start + k) - r));
    double c = 0;
    if (!cubic) {
      c = std::clamp(1 - x, 0.0, 1.0);
    } else if (x <= 1) {
      c = (a.cubic_a + 2) * x * x * x - (a.cubic_a + 3) * x * x + 1;
    } else if (x < 2) {
      c = a.cubic_a * x * x * x - 5 * a.cubic_a * x * x + 8 * a.cubic_a * x - 4 * a.cubic_a;
    }
    w.push_back(c);
    sum += c;
  }
  for (double& c : w) c /= sum;
  return w;
}

Taps make_taps(const ResizeAttrs& a, int64_t x, double scale, int64_t in, int64_t out_int, double rs, double re) {
  Taps t;
  double xo = 0;
  if (!source_coord(a, x, scale, in, out_int, rs, re, &xo)) {
    t.extrapolate = true;
    return t;
  }
  // The reference keeps the ratio in (0, 1]: an integral coordinate counts as 1 past its left neighbour.
  const bool integral = xo == std::floor(xo);
  const int64_t lo = integral ? int64_t(xo) - 1 : int64_t(std::floor(xo));
  const double r = integral ? 1.0 : xo - std::floor(xo);
  std::vector<double> w;
  int64_t first = lo;
  if (a.mode == "nearest") {
    first = nearest_index(a, lo, r, integral, scale);
    w = {1.0};
  } else if (a.antialias) {
    int64_t start = 0;
    w = antialias_coeffs(a, r, scale, &start);
    first = lo + start;
  } else if (a.mode == "cubic") {
    first = lo - 1;
    w = cubic_coeffs(r, a.cubic_a);
  } else {
    w = {1 - r, r};
  }
  double sum = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    int64_t i = first + int64_t(k);
    if (a.exclude_outside && (i < 0 || i >= in)) w[k] = 0;
    sum += w[k];
  }
  for (size_t k = 0; k < w.size(); ++k) {
    int64_t i = std::min(std::max(first + int64_t(k), int64_t(0)), in - 1);  // edge padding
    t.idx.push_back(i);
    t.w.push_back(a.exclude_outside && sum != 0 ? w[k] / sum : w[k]);
  }
  return t;
}

// Resamples `data` (dims `dims`) along `axis` to `out_len` entries.
std::vector<double> resample_axis(const std::vector<double>& data, std::vector<int64_t>& dims, size_t axis,
                                  int64_t out_len, const std::vector<Taps>& taps, double extrapolation) {
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  const int64_t in_len = dims[axis];
  std::vector<double> out(size_t(outer * out_len * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t x = 0; x < out_len; ++x) {
      const Taps& t = taps[size_t(x)];
      double* dst = &out[size_t((o * out_len + x) * inner)];
      for (int64_t i = 0; i < inner; ++i) {
        if (t.extrapolate) { dst[i] = extrapolation; continue; }
        double acc = 0;
        for (size_t k = 0; k < t.idx.size(); ++k) acc += t.w[k] * data[size_t((o * in_len + t.idx[k]) * inner + i)];
        dst[i] = acc;
      }
    }
  dims[axis] = out_len;
  return out;
}

ResizeAttrs read_attrs(const KernelContext& ctx) {
  const Node& n = ctx.node();
  ResizeAttrs a;
  a.mode = n.attr_string("mode", "nearest");
  if (a.mode == "bilinear") a.mode = "linear";
  const bool legacy = n.op_type == "Upsample" || ctx.opset() < 11;
  if (legacy) {
    a.ctm = "asymmetric";
    a.legacy_nearest = true;
    return a;
  }
  a.ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
  a.nearest_mode = n.attr_string("nearest_mode", "round_prefer_floor");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = n.attr_float("extrapolation_value", 0.0f);
  a.antialias = n.attr_int("antialias", 0) != 0 && a.mode != "nearest";
  return a;
}

// The per-axis scales the coordinate transform uses: the given scales, or sizes / input dims
// (adjusted by keep_aspect_ratio_policy), spread over opset 18's `axes`.
Expected<std::vector<double>> read_scales(KernelContext& ctx, const std::vector<int64_t>& axes) {
  const Node& n = ctx.node();
  const Tensor& x = ctx.input(0);
  std::vector<double> s;
  if (n.op_type == "Upsample" && ctx.opset() < 9) {
    for (float f : n.attr_floats("scales")) s.push_back(f);
  } else {
    const size_t si = (n.op_type == "Resize" && ctx.opset() >= 11) ? 2 : 1;
    std::vector<int64_t> sizes;
    if (ctx.has_input(si) && ctx.input(si).numel() > 0) {
      for (int64_t i = 0; i < ctx.input(si).numel(); ++i) s.push_back(float(ctx.input(si).get_as_double(i)));
    } else if (si == 2 && ctx.has_input(3)) {
      auto v = ctx.input(3).to_int64_vector();
      if (!v) return ctx.fail("sizes: ", v.status().message());
      sizes = *v;
    }
    auto plan = resize_plan(x.dims(), axes, s, sizes, n.attr_string("keep_aspect_ratio_policy", "stretch"));
    if (!plan) return ctx.fail(plan.status().message());
    s = plan->scales;
  }
  if (s.size() != x.rank()) return ctx.fail("expected ", x.rank(), " scales, got ", s.size());
  return s;
}

Status resize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const ResizeAttrs a = read_attrs(ctx);
  const size_t rank = x.rank();
  auto axes = resize_axes(ctx.opset() >= 18 ? ctx.node().attr_ints("axes") : std::vector<int64_t>{}, rank);
  if (!axes) return ctx.fail(axes.status().message());
  KILN_ASSIGN_OR_RETURN(std::vector<double> scales, read_scales(ctx, *axes));
  std::vector<double> roi(2 * rank, 0.0);
  for (size_t d = 0; d < rank; ++d) roi[rank + d] = 1.0;
  if (a.ctm == "tf_crop_and_resize" && ctx.has_input(1) && ctx.input(1).numel() > 0) {
    // roi holds starts then ends, one each per entry of `axes`.
    const size_t na = axes->size();
    if (ctx.input(1).numel() != int64_t(2 * na)) return ctx.fail("roi must have ", 2 * na, " values");
    for (size_t i = 0; i < na; ++i) {
      roi[size_t((*axes)[i])] = float(ctx.input(1).get_as_double(int64_t(i)));
      roi[rank + size_t((*axes)[i])] = float(ctx.input(1).get_as_double(int64_t(na + i)));
    }
  }
  std::vector<double> data(size_t(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) data[size_t(i)] = x.get_as_double(i);
  std::vector<int64_t> dims = x.dims();
  if (x.numel() == 0 || y.numel() == 0) return Status::ok();
  for (size_t d = rank; d-- > 0;) {
    std::vector<Taps> taps;
    for (int64_t o = 0; o < y.dim(d); ++o) taps.push_back(make_taps(a, o, scales[d], x.dim(d), y.dim(d), roi[d], roi[rank + d]));
    data = resample_axis(data, dims, d, y.dim(d), taps, a.extrapolation);
  }
  return visit_dtype(y.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) {
      double v = data[size_t(i)];
      if constexpr (std::is_integral_v<T>) v = std::nearbyint(v);
      py[i] = static_cast<T>(static_cast<compute_t<T>>(v));
    }
  });
}

}  // namespace

void register_resize_kernels(KernelTable& t) {
  t.add("", "Resize", resize);
  t.add("", "Upsample", resize);
  register_grid_sample_kernels(t);
}

}  // namespace kiln::cpu
