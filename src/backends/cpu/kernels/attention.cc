// CPU kernel of Attention (opset 23/24, plus the sliding window of later opsets), following
// onnx.reference's op_attention.py step by step. Values live in double; each time the reference
// materializes a tensor in the input type T (scaled Q/K, Q.K^T, the biased scores, the softmax
// in T or softmax_precision, Y) the value is rounded to that type, so float16 and bfloat16
// results match the reference's own roundings, not just a float64 ideal.
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"

namespace kiln::cpu {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Every size of the problem in the reference's 4-D view [batch, heads, seq, head_size].
struct Dims {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_seq = 0, kv_seq = 0, past_seq = 0, total = 0;
  int64_t head = 0, v_head = 0;
  bool three_d = false;
};

Expected<Dims> read_dims(const KernelContext& ctx) {
  const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  const Node& n = ctx.node();
  Dims d;
  if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4))
    return ctx.fail("Q, K and V must all be 3-D or all 4-D, got ", q.describe(), ", ", k.describe(), ", ",
                    v.describe());
  d.three_d = q.rank() == 3;
  d.batch = q.dim(0);
  if (d.three_d) {
    d.q_heads = n.attr_int("q_num_heads", 0);
    d.kv_heads = n.attr_int("kv_num_heads", 0);
    if (d.q_heads <= 0 || d.kv_heads <= 0) return ctx.fail("3-D inputs need positive q_num_heads and kv_num_heads");
    if (q.dim(2) % d.q_heads || k.dim(2) % d.kv_heads || v.dim(2) % d.kv_heads)
      return ctx.fail("hidden sizes ", q.dim(2), "/", k.dim(2), "/", v.dim(2),
                      " do not divide by the head counts q_num_heads ", d.q_heads, " and kv_num_heads ", d.kv_heads);
    d.q_seq = q.dim(1);
    d.kv_seq = k.dim(1);
    d.head = q.dim(2) / d.q_heads;
    if (k.dim(2) / d.kv_heads != d.head) return ctx.fail("Q and K head sizes differ");
    d.v_head = v.dim(2) / d.kv_heads;
  } else {
    d.q_heads = q.dim(1);
    d.kv_heads = k.dim(1);
    if (v.dim(1) != d.kv_heads) return ctx.fail("inconsistent head counts: K has ", d.kv_heads, " heads, V ", v.dim(1));
    d.q_seq = q.dim(2);
    d.kv_seq = k.dim(2);
    d.head = q.dim(3);
    if (k.dim(3) != d.head) return ctx.fail("Q and K head sizes differ: ", d.head, " vs ", k.dim(3));
    d.v_head = v.dim(3);
  }
  if (d.kv_heads <= 0 || d.q_heads % d.kv_heads != 0)
    return ctx.fail("inconsistent head counts: q_num_heads ", d.q_heads, " is not a multiple of kv_num_heads ",
                    d.kv_heads);
  if (k.dim(0) != d.batch || v.dim(0) != d.batch || v.dim(d.three_d ? 1 : 2) != d.kv_seq)
    return ctx.fail("K and V do not match Q's batch or each other's sequence length");
  if (ctx.has_input(4)) {
    const Tensor &pk = ctx.input(4), &pv = ctx.input(5);
    if (pk.rank() != 4 || pv.rank() != 4 || pk.dim(0) != d.batch || pk.dim(1) != d.kv_heads || pk.dim(3) != d.head ||
        pv.dim(0) != d.batch || pv.dim(1) != d.kv_heads || pv.dim(2) != pk.dim(2) || pv.dim(3) != d.v_head)
      return ctx.fail("past_key ", pk.describe(), " / past_value ", pv.describe(), " do not fit K and V");
    d.past_seq = pk.dim(2);
  }
  d.total = d.past_seq + d.kv_seq;
  return d;
}

// A Q/K/V input as [batch, heads, seq, size] (3-D inputs are [batch, seq, heads * size]).
std::vector<double> to_bhsd(const std::vector<double>& x, const Dims& d, int64_t heads, int64_t seq, int64_t size) {
  if (!d.three_d) return x;
  std::vector<double> out(x.size());
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t e = 0; e < size; ++e)
          out[((b * heads + h) * seq + s) * size + e] = x[((b * seq + s) * heads + h) * size + e];
  return out;
}

// past (seq past_seq) then current (seq kv_seq) along the sequence axis: the present cache.
std::vector<double> concat_seq(const std::vector<double>& past, const std::vector<double>& cur, const Dims& d,
                               int64_t size) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(d.batch * d.kv_heads * d.total * size));
  for (int64_t bh = 0; bh < d.batch * d.kv_heads; ++bh) {
    out.insert(out.end(), past.begin() + bh * d.past_seq * size, past.begin() + (bh + 1) * d.past_seq * size);
    out.insert(out.end(), cur.begin() + bh * d.kv_seq * size, cur.begin() + (bh + 1) * d.kv_seq * size);
  }
  return out;
}

// attn_mask broadcast right-aligned to [batch, q_heads, q_seq, total]; its last dim may be
// shorter than total, the rest reading as masked (np.pad with -inf / false in the reference).
struct Mask {
  std::vector<double> bias;  // 0 / -inf for bool masks, the values for float masks
  std::vector<int64_t> strides = std::vector<int64_t>(4, 0);
  int64_t last = 0;  // the mask's own last dim
};

Expected<Mask> read_mask(const KernelContext& ctx, const Dims& d) {
  const Tensor& m = ctx.input(3);
  const int64_t target[4] = {d.batch, d.q_heads, d.q_seq, d.total};
  if (m.rank() < 1 || m.rank() > 4) return ctx.fail("attn_mask must have rank 1 to 4, got ", m.describe());
  Mask out;
  out.last = m.dims().back();
  if (out.last > d.total)
    return ctx.fail("attn_mask's last dim ", out.last, " exceeds the total sequence length ", d.total);
  int64_t stride = 1;
  for (size_t k = m.rank(); k-- > 0;) {
    const size_t t = 4 - m.rank() + k;
    if (t != 3 && m.dim(k) != 1 && m.dim(k) != target[t])
      return ctx.fail("attn_mask ", m.describe(), " does not broadcast to [", d.batch, ",", d.q_heads, ",", d.q_seq,
                      ",", d.total, "]");
    out.strides[t] = m.dim(k) == 1 && t != 3 ? 0 : stride;
    stride *= m.dim(k);
  }
  if (m.dtype() == DataType::kBool) {
    const bool* p = m.data<bool>();
    out.bias.resize(static_cast<size_t>(m.numel()));
    for (size_t i = 0; i < out.bias.size(); ++i) out.bias[i] = p[i] ? 0.0 : kNegInf;
  } else {
    auto v = to_doubles(m);
    if (!v) return ctx.fail("attn_mask: ", v.status().message());
    out.bias = std::move(*v);
  }
  return out;
}

struct Bias {
  std::vector<double> values;       // [batch, q_heads, q_seq, total]
  std::vector<bool> row_masked;     // [batch, q_heads, q_seq]: every key masked
};

// The additive bias: attn_mask + causal + sliding window + nonpad padding, each 0 or -inf
// except the float mask. Causal and window are bottom-right aligned by `offset` (the past length,
// or nonpad_kv_seqlen[b] - q_seq for an external cache).
Expected<Bias> attention_bias(const KernelContext& ctx, const Dims& d) {
  const Node& n = ctx.node();
  const bool causal = n.attr_int("is_causal", 0) != 0;
  const int64_t left = n.attr_int("left_window_size", -1), right = n.attr_int("right_window_size", -1);
  if (left < -1 || right < -1) return ctx.fail("window sizes must be -1 or nonnegative");
  Mask mask;
  if (ctx.has_input(3)) {
    KILN_ASSIGN_OR_RETURN(mask, read_mask(ctx, d));
  }
  std::vector<int64_t> nonpad;
  if (ctx.has_input(6)) {
    auto v = ctx.input(6).to_int64_vector();
    if (!v) return ctx.fail("nonpad_kv_seqlen: ", v.status().message());
    nonpad = std::move(*v);
    if (static_cast<int64_t>(nonpad.size()) != d.batch)
      return ctx.fail("nonpad_kv_seqlen has ", nonpad.size(), " values for batch ", d.batch);
  }
  Bias out;
  out.values.resize(static_cast<size_t>(d.batch * d.q_heads * d.q_seq * d.total));
  out.row_masked.resize(static_cast<size_t>(d.batch * d.q_heads * d.q_seq));
  size_t at = 0, row = 0;
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t offset = !nonpad.empty() ? nonpad[b] - d.q_seq : d.past_seq;
    for (int64_t h = 0; h < d.q_heads; ++h)
      for (int64_t i = 0; i < d.q_seq; ++i, ++row) {
        double row_max = kNegInf;
        for (int64_t j = 0; j < d.total; ++j, ++at) {
          double v = 0;
          if (!mask.bias.empty())
            v = j >= mask.last ? kNegInf
                               : mask.bias[b * mask.strides[0] + h * mask.strides[1] + i * mask.strides[2] +
                                           j * mask.strides[3]];
          const int64_t diff = i + offset - j;
          if (causal && diff < 0) v += kNegInf;
          if ((left >= 0 && diff > left) || (right >= 0 && -diff > right)) v += kNegInf;
          if (!nonpad.empty() && j >= nonpad[b]) v += kNegInf;
          out.values[at] = v;
          row_max = std::isnan(v) || std::isnan(row_max) ? NAN : std::max(row_max, v);
        }
        out.row_masked[row] = row_max == kNegInf;
      }
  }
  return out;
}

// The softmax of one row in precision p, as the reference's _softmax: the max of an all -inf
// row reads as 0 and a zero sum as 1, so such a row gives zeros rather than NaN.
void softmax_row(double* x, int64_t n, DataType p) {
  double mx = kNegInf;
  for (int64_t j = 0; j < n; ++j) mx = std::isnan(x[j]) || std::isnan(mx) ? NAN : std::max(mx, x[j]);
  if (mx == kNegInf) mx = 0;
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = round_to_float_type(p, std::exp(round_to_float_type(p, x[j] - mx)));
    // bfloat16 (ml_dtypes) reduces in its own type, one rounding per addition.
    sum = p == DataType::kBFloat16 ? round_to_float_type(p, sum + x[j]) : sum + x[j];
  }
  sum = round_to_float_type(p, sum);
  if (sum == 0) sum = 1;
  for (int64_t j = 0; j < n; ++j) x[j] = round_to_float_type(p, x[j] / sum);
}

struct Settings {
  DataType t, softmax_type;
  double scale_sqrt, softcap;
  int64_t mode;
};

Expected<Settings> read_settings(const KernelContext& ctx, const Dims& d) {
  const Node& n = ctx.node();
  Settings s;
  s.t = ctx.input(0).dtype();
  s.softmax_type = s.t;
  if (n.has_attr("softmax_precision")) {
    const int64_t code = n.attr_int("softmax_precision", 1);
    if (!dtype_code_known(static_cast<int32_t>(code)) || !dtype_is_float(static_cast<DataType>(code)))
      return ctx.fail("softmax_precision ", code, " is not a float type");
    s.softmax_type = static_cast<DataType>(code);
  }
  // The reference scales Q and K each by sqrt(scale), rounded to T.
  const double scale = n.has_attr("scale") ? n.attr_float("scale", 1.0f) : 1.0 / std::sqrt(double(d.head));
  s.scale_sqrt = round_to_float_type(s.t, std::sqrt(scale));
  s.softcap = n.attr_float("softcap", 0.0f);
  s.mode = n.attr_int("qk_matmul_output_mode", 0);
  return s;
}

// The scores of one (b, h, i) row before softmax: softcap(Qs.Ks^T), then + bias. `qk_out`
// receives what qk_matmul_output_mode 0..2 exposes.
void score_row(const Settings& s, const double* q, const double* k, const double* bias, int64_t total, int64_t head,
               double* scores, double* qk_out) {
  for (int64_t j = 0; j < total; ++j) {
    double dot = 0;
    for (int64_t e = 0; e < head; ++e) dot += q[e] * k[j * head + e];
    double v = round_to_float_type(s.t, dot);
    if (s.softcap > 0) v = round_to_float_type(s.t, round_to_float_type(s.t, std::tanh(round_to_float_type(s.t, v / s.softcap))) * s.softcap);
    const double with_bias = round_to_float_type(s.t, v + bias[j]);
    if (qk_out) qk_out[j] = s.mode == 2 ? with_bias : v;
    scores[j] = round_to_float_type(s.softmax_type, with_bias);
  }
}

Status write(KernelContext& ctx, size_t i, const std::vector<double>& v) {
  if (!ctx.has_output(i)) return Status::ok();
  Status s = from_doubles(ctx.output(i), v);
  return s ? s : ctx.fail("output ", i, ": ", s.message());
}

Status attention(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Dims d, read_dims(ctx));
  KILN_ASSIGN_OR_RETURN(Settings s, read_settings(ctx, d));
  std::vector<std::vector<double>> in(6);
  for (size_t i : {0, 1, 2, 4, 5}) {
    if (!ctx.has_input(i)) continue;
    auto v = to_doubles(ctx.input(i));
    if (!v) return ctx.fail("input ", i, ": ", v.status().message());
    in[i] = std::move(*v);
  }
  const std::vector<double> q = to_bhsd(in[0], d, d.q_heads, d.q_seq, d.head);
  const std::vector<double> key = concat_seq(in[4], to_bhsd(in[1], d, d.kv_heads, d.kv_seq, d.head), d, d.head);
  const std::vector<double> value =
      concat_seq(in[5], to_bhsd(in[2], d, d.kv_heads, d.kv_seq, d.v_head), d, d.v_head);
  KILN_ASSIGN_OR_RETURN(Bias bias, attention_bias(ctx, d));
  std::vector<double> qs(q.size()), ks(key.size());
  for (size_t i = 0; i < q.size(); ++i) qs[i] = round_to_float_type(s.t, q[i] * s.scale_sqrt);
  for (size_t i = 0; i < key.size(); ++i) ks[i] = round_to_float_type(s.t, key[i] * s.scale_sqrt);

  const bool want_qk = ctx.has_output(3);
  std::vector<double> y(static_cast<size_t>(d.batch * d.q_heads * d.q_seq * d.v_head));
  std::vector<double> qk_out(want_qk ? bias.values.size() : 0), probs(static_cast<size_t>(d.total));
  const int64_t group = d.q_heads / d.kv_heads;  // q heads sharing one kv head (interleaved repeat)
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.q_heads; ++h) {
      const int64_t kvh = b * d.kv_heads + h / group;
      for (int64_t i = 0; i < d.q_seq; ++i) {
        const int64_t row = (b * d.q_heads + h) * d.q_seq + i;
        double* qk_row = want_qk ? &qk_out[row * d.total] : nullptr;
        score_row(s, &qs[row * d.head], &ks[kvh * d.total * d.head], &bias.values[row * d.total], d.total, d.head,
                  probs.data(), qk_row);
        softmax_row(probs.data(), d.total, s.softmax_type);
        for (double& p : probs) p = bias.row_masked[row] ? 0.0 : round_to_float_type(s.t, p);
        if (qk_row && s.mode == 3) std::copy(probs.begin(), probs.end(), qk_row);
        for (int64_t e = 0; e < d.v_head; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < d.total; ++j) acc += probs[j] * value[(kvh * d.total + j) * d.v_head + e];
          // Y is [batch, q_heads, q_seq, v_head] or, for 3-D inputs, [batch, q_seq, q_heads * v_head].
          const int64_t at = d.three_d ? ((b * d.q_seq + i) * d.q_heads + h) * d.v_head + e : row * d.v_head + e;
          y[at] = round_to_float_type(s.t, acc);
        }
      }
    }
  KILN_RETURN_IF_ERROR(write(ctx, 0, y));
  KILN_RETURN_IF_ERROR(write(ctx, 1, key));
  KILN_RETURN_IF_ERROR(write(ctx, 2, value));
  return write(ctx, 3, qk_out);
}

}  // namespace

void register_rotary_kernels(KernelTable& t);            // kernels/rotary.cc
void register_linear_attention_kernels(KernelTable& t);  // kernels/linear_attention.cc

void register_attention_kernels(KernelTable& t) {
  t.add("", "Attention", attention);
  register_rotary_kernels(t);
  register_linear_attention_kernels(t);
}

}  // namespace kiln::cpu
