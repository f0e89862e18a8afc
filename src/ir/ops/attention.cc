// Op schemas of the attention family: Attention (opset 23/24; the window attributes of later
// opsets are accepted too, since kiln reads newer models as its newest opset), RotaryEmbedding
// (opset 23) and TensorScatter (opset 24, the KV-cache update) and LinearAttention (opset 24).
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};

// The dims of Q, K, V (and the cache) seen as [batch, heads, seq, head_size]; unknown dims stay
// unknown at import time.
struct AttentionDims {
  Dim batch, q_seq, kv_seq, past_seq, head_size, v_head_size;
  int64_t q_heads = -1, kv_heads = -1;  // -1: unknown
};

// heads of a 4-D input, or -1.
int64_t static_dim(const Shape& s, size_t i) { return s.rank_known() && s[i].is_static() ? s[i].value() : -1; }

// hidden / heads for a 3-D input's last dim; fails if it does not divide.
Expected<Dim> head_size_3d(const InferContext& ctx, const Shape& s, int64_t heads, const char* what) {
  if (!s[2].is_static()) return Dim::unknown();
  if (s[2].value() % heads != 0)
    return ctx.fail(what, " hidden size ", s[2].value(), " is not divisible by its head count ", heads);
  return Dim(s[2].value() / heads);
}

Status check_heads(const InferContext& ctx, int64_t q_heads, int64_t kv_heads) {
  if (q_heads < 0 || kv_heads < 0) return Status::ok();
  if (q_heads == 0 || kv_heads == 0) return ctx.fail("head counts must be positive, got q_num_heads ", q_heads,
                                                     " and kv_num_heads ", kv_heads);
  if (q_heads % kv_heads != 0)
    return ctx.fail("inconsistent head counts: q_num_heads ", q_heads, " is not a multiple of kv_num_heads ",
                    kv_heads);
  return Status::ok();
}

Expected<AttentionDims> attention_dims(const InferContext& ctx) {
  const Node& n = ctx.node();
  const Shape &q = ctx.input_shape(0), &k = ctx.input_shape(1), &v = ctx.input_shape(2);
  AttentionDims d{Dim::unknown(), Dim::unknown(), Dim::unknown(), Dim(0), Dim::unknown(), Dim::unknown()};
  size_t rank = 0;
  for (const Shape* s : {&q, &k, &v}) {
    if (!s->rank_known()) continue;
    if (s->rank() != 3 && s->rank() != 4) return ctx.fail("Q, K and V must be 3-D or 4-D, got ", s->to_string());
    if (rank != 0 && s->rank() != rank) return ctx.fail("Q, K and V must have the same rank");
    rank = s->rank();
  }
  if (rank == 3 || (rank == 0 && n.has_attr("q_num_heads"))) {
    if (!n.has_attr("q_num_heads") || !n.has_attr("kv_num_heads"))
      return ctx.fail("3-D inputs need the attributes q_num_heads and kv_num_heads");
    d.q_heads = n.attr_int("q_num_heads", 0);
    d.kv_heads = n.attr_int("kv_num_heads", 0);
    KILN_RETURN_IF_ERROR(check_heads(ctx, d.q_heads, d.kv_heads));
    if (rank == 0) return d;
    d.batch = q[0];
    d.q_seq = q[1];
    d.kv_seq = k[1];
    KILN_ASSIGN_OR_RETURN(d.head_size, head_size_3d(ctx, q, d.q_heads, "Q"));
    KILN_ASSIGN_OR_RETURN(Dim k_head, head_size_3d(ctx, k, d.kv_heads, "K"));
    KILN_ASSIGN_OR_RETURN(d.v_head_size, head_size_3d(ctx, v, d.kv_heads, "V"));
    if (d.head_size.is_static() && k_head.is_static() && d.head_size.value() != k_head.value())
      return ctx.fail("Q's head size ", d.head_size.value(), " differs from K's ", k_head.value());
  } else if (rank == 4) {
    d.batch = q[0];
    d.q_heads = static_dim(q, 1);
    d.kv_heads = static_dim(k, 1);
    const int64_t v_heads = static_dim(v, 1);
    if (d.kv_heads >= 0 && v_heads >= 0 && d.kv_heads != v_heads)
      return ctx.fail("inconsistent head counts: K has ", d.kv_heads, " heads, V has ", v_heads);
    for (auto [attr, heads] : {std::pair{"q_num_heads", d.q_heads}, std::pair{"kv_num_heads", d.kv_heads}})
      if (n.has_attr(attr) && heads >= 0 && n.attr_int(attr, 0) != heads)
        return ctx.fail("inconsistent head counts: attribute ", attr, " is ", n.attr_int(attr, 0),
                        " but the 4-D input has ", heads, " heads");
    KILN_RETURN_IF_ERROR(check_heads(ctx, d.q_heads, d.kv_heads));
    d.q_seq = q[2];
    d.kv_seq = k[2];
    d.head_size = q[3];
    d.v_head_size = v[3];
    if (q[3].is_static() && k[3].is_static() && q[3].value() != k[3].value())
      return ctx.fail("Q's head size ", q[3].value(), " differs from K's ", k[3].value());
  }
  return d;
}

Dim add_dims(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() ? Dim(a.value() + b.value()) : Dim::unknown();
}
Dim heads_dim(int64_t h) { return h >= 0 ? Dim(h) : Dim::unknown(); }

Status infer_attention(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  if (ctx.has_input(4) != ctx.has_input(5)) return ctx.fail("past_key and past_value must be given together");
  if (ctx.has_input(6) && ctx.has_input(4))
    return ctx.fail("nonpad_kv_seqlen cannot be combined with past_key/past_value");
  const int64_t mode = ctx.node().attr_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) return ctx.fail("qk_matmul_output_mode must be 0..3, got ", mode);
  KILN_ASSIGN_OR_RETURN(AttentionDims d, attention_dims(ctx));
  if (ctx.has_input(4)) {
    const Shape& pk = ctx.input_shape(4);
    if (pk.rank_known() && pk.rank() != 4) return ctx.fail("past_key must be 4-D, got ", pk.to_string());
    d.past_seq = pk.rank_known() ? pk[2] : Dim::unknown();
    if (pk.rank_known() && d.kv_heads >= 0 && pk[1].is_static() && pk[1].value() != d.kv_heads)
      return ctx.fail("inconsistent head counts: past_key has ", pk[1].value(), " heads, K has ", d.kv_heads);
  }
  const Shape& q = ctx.input_shape(0);
  const DataType t = ctx.input_type(0);
  const Dim total = add_dims(d.past_seq, d.kv_seq);
  if (!q.rank_known()) {
    ctx.set_output(0, t, Shape::unknown_rank());
  } else if (q.rank() == 4) {
    ctx.set_output(0, t, Shape({d.batch, heads_dim(d.q_heads), d.q_seq, d.v_head_size}));
  } else {
    Dim hidden = d.v_head_size.is_static() ? Dim(d.v_head_size.value() * d.q_heads) : Dim::unknown();
    ctx.set_output(0, t, Shape({d.batch, d.q_seq, hidden}));
  }
  const Dim kvh = heads_dim(d.kv_heads);
  if (ctx.num_outputs() > 1) ctx.set_output(1, t, Shape({d.batch, kvh, total, d.head_size}));
  if (ctx.num_outputs() > 2) ctx.set_output(2, t, Shape({d.batch, kvh, total, d.v_head_size}));
  if (ctx.num_outputs() > 3) ctx.set_output(3, t, Shape({d.batch, heads_dim(d.q_heads), d.q_seq, total}));
  return Status::ok();
}

// input is [batch, seq, hidden] (with num_heads) or [batch, heads, seq, head_size].
Status infer_rotary(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 3 && x.rank() != 4)
    return ctx.fail("input must be 3-D or 4-D, got ", x.to_string());
  if (x.rank_known() && x.rank() == 3) {
    const int64_t heads = ctx.node().attr_int("num_heads", 0);
    if (heads <= 0) return ctx.fail("a 3-D input needs a positive num_heads attribute");
    if (x[2].is_static() && x[2].value() % heads != 0)
      return ctx.fail("hidden size ", x[2].value(), " is not divisible by num_heads ", heads);
  }
  if (ctx.has_input(3)) KILN_RETURN_IF_ERROR(require_type(ctx, 3, {DataType::kInt64}));
  return infer_same_as_input0(ctx);
}

Status infer_tensor_scatter(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  const std::string mode = ctx.node().attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular") return ctx.fail("mode must be 'linear' or 'circular', got '", mode, "'");
  const Shape &c = ctx.input_shape(0), &u = ctx.input_shape(1);
  if (c.rank_known() && u.rank_known()) {
    if (c.rank() != u.rank()) return ctx.fail("past_cache and update ranks differ");
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -2),
                                                       static_cast<int64_t>(c.rank())));
    if (axis == 0) return ctx.fail("axis must not be the batch axis 0");
    for (size_t i = 0; i < c.rank(); ++i) {
      if (!c[i].is_static() || !u[i].is_static()) continue;
      if (static_cast<int64_t>(i) == axis ? u[i].value() > c[i].value() : u[i].value() != c[i].value())
        return ctx.fail("update ", u.to_string(), " does not fit past_cache ", c.to_string(), " in dim ", i);
    }
  }
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(require_type(ctx, 2, {DataType::kInt64}));
  return infer_same_as_input0(ctx);
}

// LinearAttention: 3-D query/key/value [batch, seq, heads * size]; output [batch, seq,
// q_num_heads * d_v] and present_state [batch, kv_num_heads, d_k, d_v] (past_state's type).
Status infer_linear_attention(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  const int64_t qh = ctx.node().attr_int("q_num_heads", 0), kvh = ctx.node().attr_int("kv_num_heads", 0);
  if (qh <= 0 || kvh <= 0 || qh % kvh != 0)
    return ctx.fail("inconsistent head counts: q_num_heads ", qh, " must be a positive multiple of kv_num_heads ",
                    kvh);
  const Shape &q = ctx.input_shape(0), &v = ctx.input_shape(2);
  for (const Shape* s : {&q, &ctx.input_shape(1), &v})
    if (s->rank_known() && s->rank() != 3) return ctx.fail("query, key and value must be 3-D, got ", s->to_string());
  const DataType t = ctx.input_type(0);
  if (!q.rank_known() || !v.rank_known()) {
    ctx.set_output(0, t, Shape::unknown_rank());
    if (ctx.num_outputs() > 1) ctx.set_output(1, ctx.has_input(3) ? ctx.input_type(3) : t, Shape::unknown_rank());
    return Status::ok();
  }
  const Dim dk = q[2].is_static() ? Dim(q[2].value() / qh) : Dim::unknown();
  const Dim dv = v[2].is_static() ? Dim(v[2].value() / kvh) : Dim::unknown();
  ctx.set_output(0, t, Shape({q[0], q[1], dv.is_static() ? Dim(dv.value() * qh) : Dim::unknown()}));
  if (ctx.num_outputs() > 1) ctx.set_output(1, ctx.has_input(3) ? ctx.input_type(3) : t, Shape({q[0], Dim(kvh), dk, dv}));
  return Status::ok();
}

}  // namespace

void register_attention_ops(OpRegistry& r) {
  r.add(OpSchema::make("Attention", 23, 3, 7, infer_attention).outputs(1, 4));
  r.add(OpSchema::make("RotaryEmbedding", 23, 3, 4, infer_rotary));
  r.add(OpSchema::make("LinearAttention", 24, 3, 6, infer_linear_attention).outputs(1, 2));
  r.add(OpSchema::make("TensorScatter", 24, 2, 3, infer_tensor_scatter));
}

}  // namespace kiln
