// CPU kernels of the normalization family. Each reads its inputs into double, computes mean
// and (population) variance per group of elements in double, and writes back in the input's
// type. Groups are found with split_axes (kernels/reduce_axes.h).
#include <cmath>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"
#include "backends/cpu/kernels/reduce_axes.h"

namespace kiln::cpu {

namespace {

struct Moments {
  double mean = 0, var = 0;
};

// Mean and population variance of x[base + offsets[j]] (two passes, for accuracy).
Moments moments(const std::vector<double>& x, int64_t base, const std::vector<int64_t>& offsets) {
  Moments m;
  if (offsets.empty()) return m;
  for (int64_t o : offsets) m.mean += x[base + o];
  m.mean /= static_cast<double>(offsets.size());
  for (int64_t o : offsets) m.var += (x[base + o] - m.mean) * (x[base + o] - m.mean);
  m.var /= static_cast<double>(offsets.size());
  return m;
}

// Mask selecting axes [from, rank).
std::vector<bool> trailing_mask(size_t rank, size_t from) {
  std::vector<bool> mask(rank, false);
  for (size_t k = from; k < rank; ++k) mask[k] = true;
  return mask;
}

Status read_all(const KernelContext& ctx, std::vector<std::vector<double>>& out) {
  out.resize(ctx.num_inputs());
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    auto v = to_doubles(ctx.input(i));
    if (!v) return ctx.fail("input ", i, ": ", v.status().message());
    out[i] = std::move(*v);
  }
  return Status::ok();
}

Status write(KernelContext& ctx, size_t i, const std::vector<double>& v) {
  if (!ctx.has_output(i)) return Status::ok();
  Status s = from_doubles(ctx.output(i), v);
  return s ? s : ctx.fail("output ", i, ": ", s.message());
}

// Fails unless every parameter input in [first, last) has `want` elements.
Status require_numel(const KernelContext& ctx, size_t first, size_t last, int64_t want) {
  for (size_t i = first; i < last; ++i)
    if (ctx.has_input(i) && ctx.input(i).numel() != want)
      return ctx.fail("input ", i, " has ", ctx.input(i).numel(), " elements, expected ", want);
  return Status::ok();
}

// y = scale * (x - mean) / sqrt(var + eps) + B per channel; in training mode the batch's
// statistics replace mean/var and the running statistics are updated with `momentum`.
Status batch_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const int64_t n = xt.dim(0), c = xt.rank() > 1 ? xt.dim(1) : 1;
  const int64_t s = c == 0 || n == 0 ? 0 : xt.numel() / (n * c);
  const bool spatial = ctx.opset() >= 9 || ctx.node().attr_int("spatial", 1) != 0;
  KILN_RETURN_IF_ERROR(require_numel(ctx, 1, 5, spatial ? c : c * s));
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  const double momentum = ctx.node().attr_float("momentum", 0.9f);
  const bool training = ctx.opset() >= 14 ? ctx.node().attr_int("training_mode", 0) != 0
                                          : ctx.has_output(1) || ctx.has_output(3);
  std::vector<std::vector<double>> in;
  KILN_RETURN_IF_ERROR(read_all(ctx, in));
  const std::vector<double>& x = in[0];
  std::vector<double> mean = in[3], var = in[4];
  std::vector<double> saved_mean = mean, saved_var = var;
  if (training && xt.rank() < 2) return ctx.fail("training mode needs an input of rank >= 2");
  if (training && spatial) {
    std::vector<bool> mask(xt.rank(), true);
    mask[1] = false;
    const AxisGroups g = split_axes(xt.dims(), mask);
    for (int64_t ch = 0; ch < c; ++ch) {
      Moments m = moments(x, g.kept[ch], g.reduced);
      saved_mean[ch] = m.mean;
      saved_var[ch] = m.var;
      mean[ch] = in[3][ch] * momentum + m.mean * (1 - momentum);
      var[ch] = in[4][ch] * momentum + m.var * (1 - momentum);
    }
  }
  const std::vector<double>& use_mean = training ? saved_mean : mean;
  const std::vector<double>& use_var = training ? saved_var : var;
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    const int64_t ch = (i / s) % c;
    const int64_t p = spatial ? ch : ch * s + i % s;
    y[i] = in[1][p] * (x[i] - use_mean[p]) / std::sqrt(use_var[p] + eps) + in[2][p];
  }
  KILN_RETURN_IF_ERROR(write(ctx, 0, y));
  KILN_RETURN_IF_ERROR(write(ctx, 1, mean));
  KILN_RETURN_IF_ERROR(write(ctx, 2, var));
  KILN_RETURN_IF_ERROR(write(ctx, 3, saved_mean));
  return write(ctx, 4, saved_var);
}

// Per (n, c): normalize over the spatial dims, then scale[c], B[c].
Status instance_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const int64_t c = xt.dim(1);
  KILN_RETURN_IF_ERROR(require_numel(ctx, 1, 3, c));
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  std::vector<std::vector<double>> in;
  KILN_RETURN_IF_ERROR(read_all(ctx, in));
  const AxisGroups g = split_axes(xt.dims(), trailing_mask(xt.rank(), 2));
  std::vector<double> y(in[0].size());
  for (size_t o = 0; o < g.kept.size(); ++o) {
    const Moments m = moments(in[0], g.kept[o], g.reduced);
    const int64_t ch = static_cast<int64_t>(o) % c;
    const double inv = 1.0 / std::sqrt(m.var + eps);
    for (int64_t r : g.reduced) y[g.kept[o] + r] = in[1][ch] * (in[0][g.kept[o] + r] - m.mean) * inv + in[2][ch];
  }
  return write(ctx, 0, y);
}

// `param` (numpy-broadcastable to `dims`) expanded to one value per element of `dims`.
Expected<std::vector<double>> expand_to(const KernelContext& ctx, size_t i, const std::vector<int64_t>& dims) {
  std::vector<double> p = ctx.has_input(i) ? std::vector<double>{} : std::vector<double>{0.0};
  std::vector<int64_t> pdims;
  if (ctx.has_input(i)) {
    auto v = to_doubles(ctx.input(i));
    if (!v) return ctx.fail("input ", i, ": ", v.status().message());
    p = std::move(*v);
    pdims = ctx.input(i).dims();
  }
  if (pdims.size() > dims.size()) return ctx.fail("input ", i, " does not broadcast to the normalized shape");
  for (size_t k = 0; k < pdims.size(); ++k) {
    const int64_t d = dims[dims.size() - pdims.size() + k];
    if (pdims[k] != 1 && pdims[k] != d) return ctx.fail("input ", i, " does not broadcast to the normalized shape");
  }
  std::vector<double> out;
  for_each_broadcast<1>(dims, {pdims}, [&](int64_t, const std::array<int64_t, 1>& o) { out.push_back(p[o[0]]); });
  return out;
}

// Normalizes over dims [axis, rank); optional outputs Mean and InvStdDev per leading index.
Status layer_norm(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(xt.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < -rank || axis >= rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  const std::vector<int64_t> norm_dims(xt.dims().begin() + axis, xt.dims().end());
  KILN_ASSIGN_OR_RETURN(std::vector<double> scale, expand_to(ctx, 1, norm_dims));
  KILN_ASSIGN_OR_RETURN(std::vector<double> bias, expand_to(ctx, 2, norm_dims));
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, to_doubles(xt));
  const AxisGroups g = split_axes(xt.dims(), trailing_mask(xt.rank(), static_cast<size_t>(axis)));
  std::vector<double> y(x.size()), mean(g.kept.size()), inv_std(g.kept.size());
  for (size_t o = 0; o < g.kept.size(); ++o) {
    const Moments m = moments(x, g.kept[o], g.reduced);
    mean[o] = m.mean;
    inv_std[o] = 1.0 / std::sqrt(m.var + eps);
    for (size_t j = 0; j < g.reduced.size(); ++j) {
      const int64_t i = g.kept[o] + g.reduced[j];
      y[i] = (x[i] - m.mean) * inv_std[o] * scale[j] + bias[j];
    }
  }
  KILN_RETURN_IF_ERROR(write(ctx, 0, y));
  KILN_RETURN_IF_ERROR(write(ctx, 1, mean));
  return write(ctx, 2, inv_std);
}

}  // namespace

void register_norm_extra_kernels(KernelTable& t);  // kernels/norm_extra.cc

void register_normalization_kernels(KernelTable& t) {
  t.add("", "BatchNormalization", batch_norm);
  t.add("", "InstanceNormalization", instance_norm);
  t.add("", "LayerNormalization", layer_norm);
  register_norm_extra_kernels(t);
}

}  // namespace kiln::cpu
