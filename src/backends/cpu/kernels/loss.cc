// CPU kernels of the loss family. SoftmaxCrossEntropyLoss is log-softmax over axis 1 followed
// by NegativeLogLikelihoodLoss; both share nll() below, which follows the ONNX reference:
// loss[n, d] = -w[t] * x[n, t, d] with t = target[n, d], 0 where t == ignore_index; "mean"
// divides the sum by the sum of the weights actually used.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"

namespace kiln::cpu {

namespace {

// N, C and the product D of the trailing dims of a [N, C, d1, ...] input.
struct LossDims {
  int64_t n = 0, c = 0, d = 1;
};

Expected<LossDims> loss_dims(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", x.describe());
  LossDims ld{x.dim(0), x.dim(1), 1};
  for (size_t k = 2; k < x.rank(); ++k) ld.d *= x.dim(k);
  if (ctx.input(1).numel() != ld.n * ld.d)
    return ctx.fail("target ", ctx.input(1).describe(), " does not match input ", x.describe());
  if (ctx.has_input(2) && ctx.input(2).numel() != ld.c)
    return ctx.fail("weights ", ctx.input(2).describe(), " must have ", ld.c, " elements");
  return ld;
}

// The negative log-likelihood of `logp` ([N, C, D] row-major) at the targets, reduced as the
// node's `reduction` says, written to output 0.
Status nll(KernelContext& ctx, const LossDims& ld, const std::vector<double>& logp) {
  const Node& node = ctx.node();
  const std::string reduction = node.attr_string("reduction", "mean");
  std::optional<int64_t> ignore;
  if (node.has_attr("ignore_index")) ignore = node.attr_int("ignore_index", 0);
  std::vector<double> weights(static_cast<size_t>(ld.c), 1.0);
  if (ctx.has_input(2)) {
    KILN_ASSIGN_OR_RETURN(weights, to_doubles(ctx.input(2)));
  }
  const Tensor& target = ctx.input(1);
  std::vector<double> loss(static_cast<size_t>(ld.n * ld.d));
  double weight_sum = 0;
  for (int64_t n = 0; n < ld.n; ++n) {
    for (int64_t d = 0; d < ld.d; ++d) {
      const int64_t i = n * ld.d + d;
      const int64_t t = target.get_as_int64(i);
      if (ignore && t == *ignore) continue;
      if (t < 0 || t >= ld.c) return ctx.fail("target ", t, " at element ", i, " is out of range [0, ", ld.c, ")");
      loss[i] = -weights[t] * logp[(n * ld.c + t) * ld.d + d];
      weight_sum += weights[t];
    }
  }
  if (reduction == "none") return from_doubles(ctx.output(0), loss);
  double sum = 0;
  for (double v : loss) sum += v;
  if (reduction == "mean") sum /= weight_sum;  // 0/0 gives NaN, as the reference does
  else if (reduction != "sum") return ctx.fail("unknown reduction '", reduction, "'");
  return from_doubles(ctx.output(0), {sum});
}

Status nll_loss(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(LossDims ld, loss_dims(ctx));
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, to_doubles(ctx.input(0)));
  return nll(ctx, ld, x);
}

// log_softmax over the class axis (shifted by the max for stability).
std::vector<double> log_softmax_axis1(const std::vector<double>& x, const LossDims& ld) {
  std::vector<double> out(x.size());
  for (int64_t n = 0; n < ld.n; ++n) {
    for (int64_t d = 0; d < ld.d; ++d) {
      const int64_t base = n * ld.c * ld.d + d;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < ld.c; ++c) m = std::max(m, x[base + c * ld.d]);
      double s = 0;
      for (int64_t c = 0; c < ld.c; ++c) s += std::exp(x[base + c * ld.d] - m);
      const double lse = m + std::log(s);
      for (int64_t c = 0; c < ld.c; ++c) out[base + c * ld.d] = x[base + c * ld.d] - lse;
    }
  }
  return out;
}

Status softmax_cross_entropy(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(LossDims ld, loss_dims(ctx));
  KILN_ASSIGN_OR_RETURN(std::vector<double> x, to_doubles(ctx.input(0)));
  const std::vector<double> logp = log_softmax_axis1(x, ld);
  if (ctx.has_output(1)) KILN_RETURN_IF_ERROR(from_doubles(ctx.output(1), logp));
  return nll(ctx, ld, logp);
}

}  // namespace

void register_loss_kernels(KernelTable& t) {
  t.add("", "NegativeLogLikelihoodLoss", nll_loss);
  t.add("", "SoftmaxCrossEntropyLoss", softmax_cross_entropy);
}

}  // namespace kiln::cpu
