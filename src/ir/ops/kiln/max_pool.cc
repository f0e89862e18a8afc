// kiln.MaxPool {layout="NHWC"}: ONNX MaxPool (one output, no Indices) on a channels-last input,
// made by passes/convert_layout.cc so that a pool between channels-last convolutions (ResNet's
// stem) needs no Transposes. X is [N,H,W,C], Y [N,oH,oW,C]; the attributes are MaxPool's
// (kernel_shape, strides, pads, dilations, auto_pad, ceil_mode) with their ONNX meaning.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_max_pool_nhwc(InferContext& ctx) {
  if (ctx.node().attr_string("layout", "") != "NHWC") return ctx.fail("kiln.MaxPool takes layout=\"NHWC\" only");
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 4) return ctx.fail("layout NHWC takes a rank-4 input, got ", x.to_string());
  std::vector<InferContext::Input> ins(1);
  ins[0] = {ctx.input_type(0), x.rank_known() ? Shape({x[0], x[3], x[1], x[2]}) : x, nullptr, true};
  InferContext c(ctx.node(), std::move(ins), 1);
  KILN_RETURN_IF_ERROR(OpRegistry::global().find("", "MaxPool")->infer(c));
  const Shape& y = c.output(0).shape;
  ctx.set_output(0, c.output(0).dtype, y.rank_known() && y.rank() == 4 ? Shape({y[0], y[2], y[3], y[1]}) : y);
  return Status::ok();
}

}  // namespace

void register_kiln_max_pool_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("MaxPool", 1, 1, 1, infer_max_pool_nhwc);
  s.domain = "kiln";
  r.add(std::move(s));
}

}  // namespace kiln
