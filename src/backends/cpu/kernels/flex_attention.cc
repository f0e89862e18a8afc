// CPU kernel of FlexAttention (ai.onnx.preview, opset 1), following onnx.reference's
// op_flex_attention.py step by step: Q and K are each scaled by sqrt(scale) (computed in float32,
// rounded to T), Q.K^T is rounded to T, then cast to the softmax precision C (softmax_precision,
// else float32, or double for double inputs); score_mod runs on the [B, Hq, L, S] scores in C,
// softmax in C, prob_mod on the probabilities, then probs @ V in C, cast back to T. The modifier
// subgraphs run once on the whole tensor with a nested Executor (kernels/subgraph_body.h), as
// the If/Loop/Scan kernels run their bodies. Query head h reads K/V head h / (Hq / Hkv).
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"
#include "backends/cpu/kernels/subgraph_body.h"

namespace kiln::cpu {

namespace {

struct Dims {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_seq = 0, kv_seq = 0, head = 0, v_head = 0;
};

Expected<Dims> read_dims(const KernelContext& ctx) {
  const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  const char* names[] = {"Q", "K", "V"};
  for (size_t i = 0; i < 3; ++i)
    if (ctx.input(i).rank() != 4) return ctx.fail(names[i], " must be rank 4, got ", ctx.input(i).describe());
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype())
    return ctx.fail("Q, K and V must share one element type, got ", q.describe(), ", ", k.describe(), ", ",
                    v.describe());
  Dims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3), v.dim(3)};
  if (k.dim(0) != d.batch || v.dim(0) != d.batch)
    return ctx.fail("batch sizes differ: Q ", q.describe(), ", K ", k.describe(), ", V ", v.describe());
  if (k.dim(3) != d.head) return ctx.fail("Q's head size ", d.head, " differs from K's ", k.dim(3));
  if (v.dim(1) != d.kv_heads) return ctx.fail("inconsistent head counts: K has ", d.kv_heads, " heads, V ", v.dim(1));
  if (v.dim(2) != d.kv_seq) return ctx.fail("K's sequence length ", d.kv_seq, " differs from V's ", v.dim(2));
  if (d.kv_heads <= 0 || d.q_heads % d.kv_heads != 0)
    return ctx.fail("inconsistent head counts: Q's ", d.q_heads, " heads are not a multiple of K's ", d.kv_heads);
  return d;
}

// Runs the modifier `key` on `x` ([B, Hq, L, S] in type c) in place, if the node has it.
Status apply_modifier(const KernelContext& ctx, const char* key, DataType c, const Dims& d, std::vector<double>& x) {
  if (!ctx.node().attr_graph(key)) return Status::ok();
  KILN_ASSIGN_OR_RETURN(Body body, prepare_body(ctx, key));
  const std::vector<int64_t> dims{d.batch, d.q_heads, d.q_seq, d.kv_seq};
  KILN_ASSIGN_OR_RETURN(Tensor in, Tensor::zeros(c, dims));
  KILN_RETURN_IF_ERROR(from_doubles(in, x));
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_body(ctx, body, {std::move(in)}, std::string(key) + ": "));
  if (outs.size() != 1) return ctx.fail("subgraph '", key, "' must return exactly one value, got ", outs.size());
  const Tensor& out = outs[0];
  if (out.dims() != dims)
    return ctx.fail("subgraph '", key, "' returned ", out.describe(), "; it must keep the shape [", d.batch, ",",
                    d.q_heads, ",", d.q_seq, ",", d.kv_seq, "]");
  auto v = to_doubles(out);
  if (!v) return ctx.fail("subgraph '", key, "' returned ", out.describe(), ": ", v.status().message());
  for (size_t i = 0; i < x.size(); ++i) x[i] = round_to_float_type(c, (*v)[i]);
  return Status::ok();
}

// numpy's softmax over the last axis in type c: max, exp(x - max), / sum.
void softmax_rows(std::vector<double>& x, int64_t n, DataType c) {
  for (size_t r = 0; r * n < x.size(); ++r) {
    double* row = &x[r * n];
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = std::isnan(row[j]) || std::isnan(mx) ? NAN : std::max(mx, row[j]);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = round_to_float_type(c, std::exp(round_to_float_type(c, row[j] - mx)));
      sum += row[j];
    }
    sum = round_to_float_type(c, sum);
    for (int64_t j = 0; j < n; ++j) row[j] = round_to_float_type(c, row[j] / sum);
  }
}

Status flex_attention(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Dims d, read_dims(ctx));
  const Node& n = ctx.node();
  const DataType t = ctx.input(0).dtype();
  DataType c = t == DataType::kFloat64 ? DataType::kFloat64 : DataType::kFloat32;
  if (n.has_attr("softmax_precision")) {
    const int64_t code = n.attr_int("softmax_precision", 1);
    if (!dtype_code_known(static_cast<int32_t>(code)) || !dtype_is_float(static_cast<DataType>(code)))
      return ctx.fail("softmax_precision ", code, " is not a float type");
    c = static_cast<DataType>(code);
  }
  std::vector<std::vector<double>> in(3);
  for (size_t i = 0; i < 3; ++i) {
    auto v = to_doubles(ctx.input(i));
    if (!v) return ctx.fail("input ", i, ": ", v.status().message());
    in[i] = std::move(*v);
  }
  // sqrt(scale) in float32, rounded to T; the default scale is 1/sqrt(head size).
  const double scale = n.has_attr("scale") ? n.attr_float("scale", 1.0f) : 1.0 / std::sqrt(double(d.head));
  const double ss = round_to_float_type(t, std::sqrt(static_cast<float>(scale)));
  for (size_t i : {0, 1})
    for (double& x : in[i]) x = round_to_float_type(t, x * ss);
  const std::vector<double>&q = in[0], &k = in[1];
  const int64_t group = d.q_heads / d.kv_heads;
  std::vector<double> scores(static_cast<size_t>(d.batch * d.q_heads * d.q_seq * d.kv_seq));
  size_t at = 0;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.q_heads; ++h) {
      const double* kb = &k[(b * d.kv_heads + h / group) * d.kv_seq * d.head];
      for (int64_t i = 0; i < d.q_seq; ++i) {
        const double* qr = &q[((b * d.q_heads + h) * d.q_seq + i) * d.head];
        for (int64_t j = 0; j < d.kv_seq; ++j, ++at) {
          double dot = 0;
          for (int64_t e = 0; e < d.head; ++e) dot += qr[e] * kb[j * d.head + e];
          scores[at] = round_to_float_type(c, round_to_float_type(t, dot));
        }
      }
    }
  KILN_RETURN_IF_ERROR(apply_modifier(ctx, "score_mod", c, d, scores));
  softmax_rows(scores, d.kv_seq, c);
  KILN_RETURN_IF_ERROR(apply_modifier(ctx, "prob_mod", c, d, scores));
  for (double& x : in[2]) x = round_to_float_type(c, x);
  std::vector<double> y(static_cast<size_t>(d.batch * d.q_heads * d.q_seq * d.v_head));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.q_heads; ++h) {
      const double* vb = &in[2][(b * d.kv_heads + h / group) * d.kv_seq * d.v_head];
      for (int64_t i = 0; i < d.q_seq; ++i) {
        const int64_t row = (b * d.q_heads + h) * d.q_seq + i;
        const double* p = &scores[row * d.kv_seq];
        for (int64_t e = 0; e < d.v_head; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < d.kv_seq; ++j) acc += p[j] * vb[j * d.v_head + e];
          y[row * d.v_head + e] = round_to_float_type(c, acc);
        }
      }
    }
  Status s = from_doubles(ctx.output(0), y);
  return s ? s : ctx.fail("output Y: ", s.message());
}

}  // namespace

void register_flex_attention_kernels(KernelTable& t) { t.add("ai.onnx.preview", "FlexAttention", flex_attention); }

}  // namespace kiln::cpu
