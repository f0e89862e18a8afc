// Op schema of FlexAttention (domain ai.onnx.preview, opset 1): scaled dot-product attention
// over rank-4 Q [B, Hq, L, E], K [B, Hkv, S, E], V [B, Hkv, S, Ev] -> Y [B, Hq, L, Ev], with
// grouped-query heads (Hq a multiple of Hkv) and two optional modifier subgraphs, score_mod
// (after Q.K^T) and prob_mod (after Softmax). Each takes one [B, Hq, L, S] tensor in the softmax
// precision and returns one of the same shape and type; infer_graph has inferred them before
// this node, so their declared signatures are checked here.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};

Status check_modifier(const InferContext& ctx, const char* key) {
  const Graph* g = ctx.node().attr_graph(key);
  if (!g) {
    if (ctx.node().has_attr(key)) return ctx.fail("attribute '", key, "' must be a graph");
    return Status::ok();
  }
  if (g->inputs.size() != 1 || g->outputs.size() != 1)
    return ctx.fail("subgraph '", key, "' must take exactly one input and return one output, it takes ",
                    g->inputs.size(), " and returns ", g->outputs.size());
  for (const Value* v : {g->inputs[0], g->outputs[0]}) {
    if (v->shape.rank_known() && v->shape.rank() != 4)
      return ctx.fail("subgraph '", key, "': '", v->name, "' must be rank 4, got ", v->shape.to_string());
  }
  const DataType in = g->inputs[0]->dtype, out = g->outputs[0]->dtype;
  if (in != DataType::kUndefined && out != DataType::kUndefined && in != out)
    return ctx.fail("subgraph '", key, "' takes ", dtype_name(in), " but returns ", dtype_name(out));
  return Status::ok();
}

Status infer_flex_attention(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  const Node& n = ctx.node();
  if (n.has_attr("softmax_precision")) {
    const int64_t code = n.attr_int("softmax_precision", 1);
    if (!dtype_code_known(static_cast<int32_t>(code)) || !dtype_is_float(static_cast<DataType>(code)))
      return ctx.fail("softmax_precision ", code, " is not a float type");
  }
  KILN_RETURN_IF_ERROR(check_modifier(ctx, "score_mod"));
  KILN_RETURN_IF_ERROR(check_modifier(ctx, "prob_mod"));
  const Shape &q = ctx.input_shape(0), &k = ctx.input_shape(1), &v = ctx.input_shape(2);
  const char* names[] = {"Q", "K", "V"};
  const Shape* shapes[] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i)
    if (shapes[i]->rank_known() && shapes[i]->rank() != 4)
      return ctx.fail(names[i], " must be rank 4, got ", shapes[i]->to_string());
  auto known = [](const Shape& s, size_t i) { return s.rank_known() && s[i].is_static(); };
  if (known(q, 3) && known(k, 3) && q[3].value() != k[3].value())
    return ctx.fail("Q's head size ", q[3].value(), " differs from K's ", k[3].value());
  if (known(k, 1) && known(v, 1) && k[1].value() != v[1].value())
    return ctx.fail("inconsistent head counts: K has ", k[1].value(), " heads, V has ", v[1].value());
  if (known(k, 2) && known(v, 2) && k[2].value() != v[2].value())
    return ctx.fail("K's sequence length ", k[2].value(), " differs from V's ", v[2].value());
  if (known(q, 1) && known(k, 1) && (k[1].value() <= 0 || q[1].value() % k[1].value() != 0))
    return ctx.fail("inconsistent head counts: Q's ", q[1].value(), " heads are not a multiple of K's ",
                    k[1].value());
  if (!q.rank_known() || !v.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  ctx.set_output(0, ctx.input_type(0), Shape({q[0], q[1], q[2], v[3]}));
  return Status::ok();
}

}  // namespace

void register_flex_attention_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("FlexAttention", 1, 3, 3, infer_flex_attention);
  s.domain = "ai.onnx.preview";
  r.add(std::move(s));
}

}  // namespace kiln
