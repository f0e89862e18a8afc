// MaxUnpool and MaxRoiPool on the CPU (pool family).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

// Spatial size MaxPool's input had: (in - 1) * stride + kernel - pads.
Expected<std::vector<int64_t>> unpooled_dims(const Node& n, const Tensor& x) {
  if (x.rank() < 3) return err("input must have rank >= 3, got ", x.describe());
  const size_t nd = x.rank() - 2;
  std::vector<int64_t> k = n.attr_ints("kernel_shape"), s = n.attr_ints("strides", std::vector<int64_t>(nd, 1)),
                       p = n.attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
  if (k.size() != nd || s.size() != nd || p.size() != 2 * nd)
    return err("kernel_shape/strides/pads do not match input rank ", x.rank());
  std::vector<int64_t> dims = {x.dim(0), x.dim(1)};
  for (size_t i = 0; i < nd; ++i) dims.push_back(std::max<int64_t>(0, (x.dim(i + 2) - 1) * s[i] + k[i] - p[i] - p[i + nd]));
  return dims;
}

// Scatters X at the flat positions I (MaxPool's Indices, which index the unpooled shape);
// a given output_shape larger than that shape keeps the values at the same coordinates
// (the extra is zero), as the ONNX reference does.
Status max_unpool(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &ind = ctx.input(1);
  if (ind.numel() != x.numel()) return ctx.fail("indices ", ind.describe(), " do not match input ", x.describe());
  auto inferred = unpooled_dims(ctx.node(), x);
  if (!inferred) return ctx.fail(inferred.status().message());
  Tensor* y = &ctx.output(0);
  if (!y->defined()) {
    std::vector<int64_t> dims = *inferred;
    if (ctx.has_input(2)) {
      auto v = ctx.input(2).to_int64_vector();
      if (!v) return ctx.fail(v.status().message());
      dims = *v;
    }
    KILN_ASSIGN_OR_RETURN(y, ctx.allocate_output(0, x.dtype(), dims));
  }
  if (y->rank() != x.rank()) return ctx.fail("output shape ", y->describe(), " does not match input ", x.describe());
  auto scratch = Tensor::zeros(x.dtype(), *inferred);
  if (!scratch) return ctx.fail(scratch.status().message());
  const int64_t* pi = ind.data<int64_t>();
  const size_t rank = y->rank();
  Status st = visit_dtype(x.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* ps = scratch->mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (pi[i] >= 0 && pi[i] < scratch->numel()) ps[pi[i]] = px[i];
    T* py = y->mutable_data<T>();
    std::vector<int64_t> idx(rank);
    for (int64_t i = 0; i < scratch->numel(); ++i) {
      int64_t r = i, off = 0;
      bool inside = true;
      for (size_t d = rank; d-- > 0;) { idx[d] = r % inferred->at(d); r /= inferred->at(d); }
      for (size_t d = 0; d < rank; ++d) {
        inside &= idx[d] < y->dim(d);
        off = off * y->dim(d) + idx[d];
      }
      if (inside) py[off] = ps[i];
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

// Caffe's ROI max pooling: each ROI (batch, x1, y1, x2, y2) scaled by spatial_scale and split
// into pooled_h x pooled_w bins; empty bins give 0.
Status max_roi_pool(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &rois = ctx.input(1);
  Tensor& y = ctx.output(0);
  if (x.rank() != 4 || rois.rank() != 2 || rois.dim(1) != 5) return ctx.fail("bad input or rois shape");
  const double scale = ctx.node().attr_float("spatial_scale", 1.0f);
  const int64_t ph = y.dim(2), pw = y.dim(3), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  for (int64_t r = 0; r < rois.dim(0); ++r) {
    const int64_t b = static_cast<int64_t>(rois.get_as_double(r * 5));
    if (b < 0 || b >= x.dim(0)) return ctx.fail("roi ", r, " has batch index ", b, " out of range");
    const int64_t x1 = std::llround(rois.get_as_double(r * 5 + 1) * scale), y1 = std::llround(rois.get_as_double(r * 5 + 2) * scale);
    const int64_t x2 = std::llround(rois.get_as_double(r * 5 + 3) * scale), y2 = std::llround(rois.get_as_double(r * 5 + 4) * scale);
    const double bin_h = double(std::max<int64_t>(y2 - y1 + 1, 1)) / double(ph);
    const double bin_w = double(std::max<int64_t>(x2 - x1 + 1, 1)) / double(pw);
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t i = 0; i < ph; ++i) {
        for (int64_t j = 0; j < pw; ++j) {
          int64_t hs = std::clamp<int64_t>(int64_t(std::floor(i * bin_h)) + y1, 0, h);
          int64_t he = std::clamp<int64_t>(int64_t(std::ceil((i + 1) * bin_h)) + y1, 0, h);
          int64_t ws = std::clamp<int64_t>(int64_t(std::floor(j * bin_w)) + x1, 0, w);
          int64_t we = std::clamp<int64_t>(int64_t(std::ceil((j + 1) * bin_w)) + x1, 0, w);
          double m = (he <= hs || we <= ws) ? 0.0 : -std::numeric_limits<double>::infinity();
          for (int64_t yy = hs; yy < he; ++yy)
            for (int64_t xx = ws; xx < we; ++xx) m = std::max(m, x.get_as_double(((b * c + ch) * h + yy) * w + xx));
          int64_t o = ((r * c + ch) * ph + i) * pw + j;
          Status st = visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
            using T = decltype(tag);
            y.mutable_data<T>()[o] = static_cast<T>(static_cast<compute_t<T>>(m));
          });
          if (!st) return ctx.fail(st.message());
        }
      }
    }
  }
  return Status::ok();
}

}  // namespace

void register_pool_extra_kernels(KernelTable& t) {
  t.add("", "MaxUnpool", max_unpool);
  t.add("", "MaxRoiPool", max_roi_pool);
}

}  // namespace kiln::cpu
