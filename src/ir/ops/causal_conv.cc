// Op schema of CausalConvWithState (conv family): a depthwise 1-D causal convolution that
// carries its last k - 1 input positions as state. ONNX defines it at opset 27; kiln's importer
// reads newer models as opset 24 (kMaxOpset), so it is registered from 24.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// input [B, C, L], weight [C, 1, k], bias [C], past_state [B, C, P] (P = k - 1; zeros if absent)
// -> output [B, C, P + L - (k - 1)], present_state [B, C, k - 1].
Status infer_causal_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                              DataType::kBFloat16}));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 4));
  const std::string act = ctx.node().attr_string("activation", "none");
  if (act != "none" && act != "silu" && act != "swish") return ctx.fail("unknown activation '", act, "'");
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (x.rank_known() && x.rank() != 3) return ctx.fail("input must have rank 3, got ", x.to_string());
  if (w.rank_known() && w.rank() != 3) return ctx.fail("weight must have rank 3, got ", w.to_string());
  const Dim b = x.rank_known() ? x[0] : Dim::unknown(), c = x.rank_known() ? x[1] : Dim::unknown();
  const Dim l = x.rank_known() ? x[2] : Dim::unknown(), k = w.rank_known() ? w[2] : Dim::unknown();
  if (k.is_static() && k.value() < 1) return ctx.fail("kernel length must be positive");
  if (w.rank_known() && c.is_static() && w[0].is_static() && w[0].value() != c.value())
    return ctx.fail("weight ", w.to_string(), " does not match input ", x.to_string());
  Dim state = k.is_static() ? Dim(k.value() - 1) : Dim::unknown();
  Dim past = state;
  if (ctx.has_input(3)) {
    const Shape& p = ctx.input_shape(3);
    if (p.rank_known() && p.rank() != 3) return ctx.fail("past_state must have rank 3, got ", p.to_string());
    past = p.rank_known() ? p[2] : Dim::unknown();
  }
  Dim out = Dim::unknown();
  if (past.is_static() && l.is_static() && k.is_static()) {
    if (past.value() + l.value() < k.value() - 1) return ctx.fail("input is shorter than the kernel");
    out = Dim(past.value() + l.value() - (k.value() - 1));
  }
  ctx.set_output(0, ctx.input_type(0), Shape({b, c, out}));
  if (ctx.num_outputs() > 1) ctx.set_output(1, ctx.input_type(0), Shape({b, c, state}));
  return Status::ok();
}

}  // namespace

void register_causal_conv_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("CausalConvWithState", 24, 2, 4, infer_causal_conv);
  s.min_outputs = 1;
  s.max_outputs = 2;
  r.add(s);
}

}  // namespace kiln
