// CPU kernel of LinearAttention (recurrent linear attention with the update rules linear,
// gated, delta and gated_delta), step by step over time as onnx.reference's
// op_linear_attention.py, in double (the reference uses float32) with one rounding at the end.
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"

namespace kiln::cpu {

namespace {

struct LinearDims {
  int64_t batch, steps, q_heads, kv_heads, dk, dv;
  int64_t decay_last = 0, beta_last = 0;
};

Expected<LinearDims> linear_dims(const KernelContext& ctx, bool gating, bool delta) {
  const Node& n = ctx.node();
  const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  LinearDims d{};
  d.q_heads = n.attr_int("q_num_heads", 0);
  d.kv_heads = n.attr_int("kv_num_heads", 0);
  if (d.q_heads <= 0 || d.kv_heads <= 0 || d.q_heads % d.kv_heads != 0)
    return ctx.fail("inconsistent head counts: q_num_heads ", d.q_heads, " must be a positive multiple of kv_num_heads ",
                    d.kv_heads);
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) return ctx.fail("query, key and value must be 3-D");
  d.batch = q.dim(0);
  d.steps = q.dim(1);
  if (q.dim(2) % d.q_heads || k.dim(2) % d.kv_heads || v.dim(2) % d.kv_heads)
    return ctx.fail("hidden sizes do not divide by q_num_heads ", d.q_heads, " / kv_num_heads ", d.kv_heads);
  d.dk = q.dim(2) / d.q_heads;
  d.dv = v.dim(2) / d.kv_heads;
  for (const Tensor* t : {&k, &v})
    if (t->dim(0) != d.batch || t->dim(1) != d.steps) return ctx.fail("key/value batch or length differ from query");
  if (k.dim(2) / d.kv_heads != d.dk) return ctx.fail("query and key head sizes differ");
  if (gating != ctx.has_input(4) || delta != ctx.has_input(5))
    return ctx.fail("update_rule '", n.attr_string("update_rule", "gated_delta"),
                    "' needs decay iff gated and beta iff delta");
  if (gating) {
    const Tensor& g = ctx.input(4);
    d.decay_last = g.rank() == 3 ? g.dim(2) : -1;
    if (g.rank() != 3 || g.dim(0) != d.batch || g.dim(1) != d.steps ||
        (d.decay_last != d.kv_heads && d.decay_last != d.kv_heads * d.dk))
      return ctx.fail("decay ", g.describe(), " must be [batch, seq, kv_num_heads or kv_num_heads * d_k]");
  }
  if (delta) {
    const Tensor& b = ctx.input(5);
    d.beta_last = b.rank() == 3 ? b.dim(2) : -1;
    if (b.rank() != 3 || b.dim(0) != d.batch || b.dim(1) != d.steps || (d.beta_last != d.kv_heads && d.beta_last != 1))
      return ctx.fail("beta ", b.describe(), " must be [batch, seq, kv_num_heads or 1]");
  }
  if (ctx.has_input(3) && ctx.input(3).dims() != std::vector<int64_t>{d.batch, d.kv_heads, d.dk, d.dv})
    return ctx.fail("past_state ", ctx.input(3).describe(), " must be [", d.batch, ",", d.kv_heads, ",", d.dk, ",",
                    d.dv, "]");
  return d;
}

Status linear_attention(KernelContext& ctx) {
  const std::string rule = ctx.node().attr_string("update_rule", "gated_delta");
  if (rule != "linear" && rule != "gated" && rule != "delta" && rule != "gated_delta")
    return ctx.fail("unsupported update_rule '", rule, "'");
  const bool gating = rule == "gated" || rule == "gated_delta", delta = rule == "delta" || rule == "gated_delta";
  KILN_ASSIGN_OR_RETURN(LinearDims d, linear_dims(ctx, gating, delta));
  std::vector<std::vector<double>> in(6);
  for (size_t i = 0; i < 6; ++i) {
    if (!ctx.has_input(i)) continue;
    auto v = to_doubles(ctx.input(i));
    if (!v) return ctx.fail("input ", i, ": ", v.status().message());
    in[i] = std::move(*v);
  }
  const double scale_attr = ctx.node().attr_float("scale", 0.0f);
  const double scale = scale_attr == 0 ? 1.0 / std::sqrt(double(d.dk)) : scale_attr;
  const int64_t S = d.dk * d.dv, group = d.q_heads / d.kv_heads;
  std::vector<double> state = ctx.has_input(3) ? in[3] : std::vector<double>(d.batch * d.kv_heads * S, 0.0);
  std::vector<double> out(static_cast<size_t>(d.batch * d.steps * d.q_heads * d.dv)), vt(d.dv);
  for (int64_t t = 0; t < d.steps; ++t)
    for (int64_t b = 0; b < d.batch; ++b) {
      const int64_t bt = b * d.steps + t;
      for (int64_t h = 0; h < d.kv_heads; ++h) {
        double* st = &state[(b * d.kv_heads + h) * S];
        const double* k = &in[1][(bt * d.kv_heads + h) * d.dk];
        const double* v = &in[2][(bt * d.kv_heads + h) * d.dv];
        if (gating)
          for (int64_t i = 0; i < d.dk; ++i) {
            const int64_t gi = d.decay_last == d.kv_heads ? bt * d.kv_heads + h : (bt * d.kv_heads + h) * d.dk + i;
            const double g = std::exp(in[4][gi]);
            for (int64_t m = 0; m < d.dv; ++m) st[i * d.dv + m] *= g;
          }
        for (int64_t m = 0; m < d.dv; ++m) {
          vt[m] = v[m];
          if (!delta) continue;
          double retrieved = 0;
          for (int64_t i = 0; i < d.dk; ++i) retrieved += st[i * d.dv + m] * k[i];
          vt[m] = in[5][bt * d.beta_last + (d.beta_last == 1 ? 0 : h)] * (v[m] - retrieved);
        }
        for (int64_t i = 0; i < d.dk; ++i)
          for (int64_t m = 0; m < d.dv; ++m) st[i * d.dv + m] += k[i] * vt[m];
      }
      for (int64_t h = 0; h < d.q_heads; ++h) {
        const double* q = &in[0][(bt * d.q_heads + h) * d.dk];
        const double* st = &state[(b * d.kv_heads + h / group) * S];
        for (int64_t m = 0; m < d.dv; ++m) {
          double acc = 0;
          for (int64_t i = 0; i < d.dk; ++i) acc += q[i] * st[i * d.dv + m];
          out[(bt * d.q_heads + h) * d.dv + m] = scale * acc;
        }
      }
    }
  Status s = from_doubles(ctx.output(0), out);
  if (s && ctx.has_output(1)) s = from_doubles(ctx.output(1), state);
  return s ? s : ctx.fail(s.message());
}

}  // namespace

void register_linear_attention_kernels(KernelTable& t) { t.add("", "LinearAttention", linear_attention); }

}  // namespace kiln::cpu
