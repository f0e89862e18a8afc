// kiln.ConvAct: a convolution with its bias, an optional residual added to its output, and an
// optional activation, as one layer (made by passes/fuse_conv_act.cc):
//   Y = act(Conv(X, W, B) + Z)
// Inputs: X, W, B (optional), Z (optional, Y's shape). Attributes: Conv's, plus
// activation = "Relu" or "" (none). One kernel per backend computes the whole expression.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_conv_act(InferContext& ctx) {
  const OpSchema* conv = OpRegistry::global().find("", "Conv");
  KILN_RETURN_IF_ERROR(conv->infer(ctx));  // reads X, W, B only
  std::string act = ctx.node().attr_string("activation", "");
  if (!act.empty() && act != "Relu") return ctx.fail("unknown activation '", act, "' (kiln.ConvAct takes Relu or none)");
  if (ctx.has_input(3)) {
    const Shape& z = ctx.input_shape(3);
    const Shape& y = ctx.output(0).shape;
    if (z.is_static() && y.is_static() && z != y)
      return ctx.fail("residual input has shape ", z.to_string(), " but the convolution gives ", y.to_string());
  }
  return Status::ok();
}

}  // namespace

void register_kiln_conv_act_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("ConvAct", 1, 2, 4, infer_conv_act).kind(FusionKind::kAnchor);
  s.domain = "kiln";
  r.add(std::move(s));
}

}  // namespace kiln
