// CPU kernels of the normalization family beyond the batch/instance/layer norms:
// GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization and RMSNormalization.
// Like the others they compute in double and write back in the input's type.
#include <algorithm>
#include <cmath>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"
#include "backends/cpu/kernels/reduce_axes.h"

namespace kiln::cpu {

namespace {

Status write_y(KernelContext& ctx, const std::vector<double>& y) {
  Status s = from_doubles(ctx.output(0), y);
  return s ? s : ctx.fail(s.message());
}

Expected<std::vector<double>> read(const KernelContext& ctx, size_t i) {
  auto v = to_doubles(ctx.input(i));
  if (!v) return ctx.fail("input ", i, ": ", v.status().message());
  return v;
}

// Channels split into num_groups groups; each (n, group) is normalized over its channels and
// spatial dims. scale/bias hold one value per channel (opset 21) or per group (opset 18).
Status group_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const int64_t groups = ctx.node().attr_int("num_groups", 1);
  const int64_t n = xt.dim(0), c = xt.dim(1);
  if (groups <= 0 || c % groups != 0) return ctx.fail(c, " channels do not divide into ", groups, " groups");
  const int64_t per_group = n * c == 0 ? 0 : xt.numel() / (n * groups);  // elements of one (n, group)
  const int64_t spatial = n * c == 0 ? 0 : xt.numel() / (n * c);
  const int64_t pn = ctx.input(1).numel();
  if (pn != c && pn != groups) return ctx.fail("scale has ", pn, " elements; expected ", c, " or ", groups);
  if (ctx.input(2).numel() != pn) return ctx.fail("bias has ", ctx.input(2).numel(), " elements, scale ", pn);
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, read(ctx, 0));
  KILN_ASSIGN_OR_RETURN(std::vector<double> scale, read(ctx, 1));
  KILN_ASSIGN_OR_RETURN(std::vector<double> bias, read(ctx, 2));
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < n * groups; ++b) {
    const int64_t base = b * per_group;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < per_group; ++j) mean += x[base + j];
    mean /= static_cast<double>(per_group);
    for (int64_t j = 0; j < per_group; ++j) var += (x[base + j] - mean) * (x[base + j] - mean);
    var /= static_cast<double>(per_group);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < per_group; ++j) {
      const int64_t g = b % groups;
      const int64_t p = pn == c && pn != groups ? g * (c / groups) + j / spatial : g;
      y[base + j] = (x[base + j] - mean) * inv * scale[p] + bias[p];
    }
  }
  return write_y(ctx, y);
}

// Local response normalization across channels:
// y = x / (bias + alpha / size * sum of x^2 over the channel window) ^ beta.
Status lrn(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Node& node = ctx.node();
  const int64_t size = node.attr_int("size", 1);
  if (size <= 0) return ctx.fail("size must be positive");
  const double alpha = node.attr_float("alpha", 1e-4f), beta = node.attr_float("beta", 0.75f);
  const double bias = node.attr_float("bias", 1.0f);
  const int64_t n = xt.dim(0), c = xt.dim(1);
  const int64_t spatial = n * c == 0 ? 0 : xt.numel() / (n * c);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;  // floor / ceil of (size-1)/2
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, read(ctx, 0));
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    const int64_t ch = (i / spatial) % c;
    const int64_t base = i - ch * spatial;
    double sq = 0;
    for (int64_t k = std::max<int64_t>(0, ch - before); k <= std::min(c - 1, ch + after); ++k)
      sq += x[base + k * spatial] * x[base + k * spatial];
    y[i] = x[i] / std::pow(bias + alpha / static_cast<double>(size) * sq, beta);
  }
  return write_y(ctx, y);
}

// The mask of `axes` (possibly negative), validated against the rank.
Expected<std::vector<bool>> axes_mask(const KernelContext& ctx, std::vector<int64_t> axes, size_t rank) {
  std::vector<bool> mask(rank, false);
  const int64_t r = static_cast<int64_t>(rank);
  for (int64_t a : axes) {
    if (a < -r || a >= r) return ctx.fail("axis ", a, " is out of range for rank ", r);
    mask[static_cast<size_t>(a < 0 ? a + r : a)] = true;
  }
  return mask;
}

// (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) over `axes`, as ONNX's function body computes it.
Status mean_variance_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, axes_mask(ctx, ctx.node().attr_ints("axes", {0, 2, 3}), xt.rank()));
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, read(ctx, 0));
  const AxisGroups g = split_axes(xt.dims(), mask);
  std::vector<double> y(x.size());
  for (int64_t base : g.kept) {
    double s = 0, sq = 0;
    for (int64_t r : g.reduced) {
      s += x[base + r];
      sq += x[base + r] * x[base + r];
    }
    const double cnt = static_cast<double>(g.reduced.size());
    const double mean = s / cnt;
    const double std_dev = std::sqrt(std::max(0.0, sq / cnt - mean * mean));
    for (int64_t r : g.reduced) y[base + r] = (x[base + r] - mean) / (std_dev + 1e-9);
  }
  return write_y(ctx, y);
}

// x divided by its L1 or L2 norm along `axis`.
Status lp_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const int64_t p = ctx.node().attr_int("p", 2);
  if (p != 1 && p != 2) return ctx.fail("p must be 1 or 2, got ", p);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, axes_mask(ctx, {ctx.node().attr_int("axis", -1)}, xt.rank()));
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, read(ctx, 0));
  const AxisGroups g = split_axes(xt.dims(), mask);
  std::vector<double> y(x.size());
  for (int64_t base : g.kept) {
    double norm = 0;
    for (int64_t r : g.reduced) norm += p == 1 ? std::fabs(x[base + r]) : x[base + r] * x[base + r];
    if (p == 2) norm = std::sqrt(norm);
    // A zero norm gives zeros (the ONNX reference's np.where(norm == 0, 0, x / norm)).
    for (int64_t r : g.reduced) y[base + r] = norm == 0 ? 0.0 : x[base + r] / norm;
  }
  return write_y(ctx, y);
}

// RMSNormalization: y = x / sqrt(mean(x^2 over dims [axis, rank)) + epsilon) * scale, the scale
// broadcast numpy-style to X as in the reference.
Status rms_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Tensor& st = ctx.input(1);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, axes_mask(ctx, {ctx.node().attr_int("axis", -1)}, xt.rank()));
  for (size_t k = 0; k < mask.size(); ++k) mask[k] = mask[k] || (k > 0 && mask[k - 1]);  // [axis, rank)
  if (st.rank() > xt.rank()) return ctx.fail("scale ", st.describe(), " does not broadcast to ", xt.describe());
  for (size_t k = 0; k < st.rank(); ++k) {
    const int64_t d = xt.dim(xt.rank() - st.rank() + k);
    if (st.dim(k) != 1 && st.dim(k) != d) return ctx.fail("scale ", st.describe(), " does not broadcast to ", xt.describe());
  }
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, read(ctx, 0));
  KILN_ASSIGN_OR_RETURN(std::vector<double> s, read(ctx, 1));
  std::vector<double> scale;  // one value per element of X
  scale.reserve(x.size());
  for_each_broadcast<1>(xt.dims(), {st.dims()}, [&](int64_t, const std::array<int64_t, 1>& o) { scale.push_back(s[o[0]]); });
  const AxisGroups g = split_axes(xt.dims(), mask);
  std::vector<double> y(x.size());
  for (int64_t base : g.kept) {
    double sq = 0;
    for (int64_t r : g.reduced) sq += x[base + r] * x[base + r];
    const double inv_rms = 1.0 / std::sqrt(sq / static_cast<double>(g.reduced.size()) + eps);
    for (int64_t r : g.reduced) y[base + r] = x[base + r] * inv_rms * scale[base + r];
  }
  return write_y(ctx, y);
}

}  // namespace

void register_norm_extra_kernels(KernelTable& t) {
  t.add("", "GroupNormalization", group_norm);
  t.add("", "LRN", lrn);
  t.add("", "MeanVarianceNormalization", mean_variance_norm);
  t.add("", "LpNormalization", lp_norm);
  t.add("", "RMSNormalization", rms_norm);
}

}  // namespace kiln::cpu
