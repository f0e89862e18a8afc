// CPU kernel of CausalConvWithState (conv family): over padded = concat(past_state or zeros,
// input) along time, out[b, c, t] = bias[c] + sum_j w[c, 0, j] * padded[b, c, t + j], optionally
// followed by SiLU; present_state is the last k - 1 positions of padded.
#include <cmath>
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

template <class T>
void store(Tensor& t, const std::vector<double>& v) {
  T* p = t.mutable_data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(static_cast<compute_t<T>>(v[size_t(i)]));
}

Status causal_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  Tensor& y = ctx.output(0);
  const int64_t B = x.dim(0), C = x.dim(1), L = x.dim(2), K = w.dim(2), S = K - 1;
  const int64_t P = ctx.has_input(3) ? ctx.input(3).dim(2) : S, T = P + L, O = y.dim(2);
  if (w.dim(0) != C || O != T - S) return ctx.fail("weight or output shape does not fit the input");
  if (ctx.has_input(3) && (ctx.input(3).dim(0) != B || ctx.input(3).dim(1) != C))
    return ctx.fail("past_state ", ctx.input(3).describe(), " does not match input ", x.describe());
  if (ctx.has_input(2) && ctx.input(2).numel() != C) return ctx.fail("bias must have ", C, " values");
  const bool silu = ctx.node().attr_string("activation", "none") != "none";
  std::vector<double> padded(size_t(B * C * T), 0.0), out(size_t(B * C * O)), state(size_t(B * C * S));
  for (int64_t bc = 0; bc < B * C; ++bc) {
    for (int64_t t = 0; t < P; ++t)
      if (ctx.has_input(3)) padded[size_t(bc * T + t)] = ctx.input(3).get_as_double(bc * P + t);
    for (int64_t t = 0; t < L; ++t) padded[size_t(bc * T + P + t)] = x.get_as_double(bc * L + t);
    const int64_t c = bc % C;
    for (int64_t t = 0; t < O; ++t) {
      double acc = ctx.has_input(2) ? ctx.input(2).get_as_double(c) : 0.0;
      for (int64_t j = 0; j < K; ++j) acc += w.get_as_double(c * K + j) * padded[size_t(bc * T + t + j)];
      out[size_t(bc * O + t)] = silu ? acc / (1.0 + std::exp(-acc)) : acc;
    }
    for (int64_t s = 0; s < S; ++s) state[size_t(bc * S + s)] = padded[size_t(bc * T + T - S + s)];
  }
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using V = decltype(tag);
    store<V>(y, out);
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) store<V>(ctx.output(1), state);
  });
}

}  // namespace

void register_causal_conv_kernels(KernelTable& t) { t.add("", "CausalConvWithState", causal_conv); }

}  // namespace kiln::cpu
