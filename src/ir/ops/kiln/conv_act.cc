// kiln.ConvAct: a convolution with its bias, an optional residual added to its output, and an
// optional activation, as one layer (made by passes/fuse_epilogue.cc):
//   Y = act(Conv(X, W, B) + Z)
// Inputs: X, W, B (optional), Z (optional, Y's shape). Attributes: Conv's, plus
// activation = "Relu", "" (none), "Clip" (bounds in act_min / act_max, ONNX Clip's order:
// max with act_min, then min with act_max) or "Silu" (x * sigmoid(x); Clip and Silu are folded
// in by passes/convert_layout.cc, for channels-last layers only), and layout = "NCHW" (default) or "NHWC" (made by
// passes/convert_layout.cc for 2-D convolutions): then X is [N,H,W,C], W is [M,kH,kW,C/group]
// and Z, Y are [N,oH,oW,M]; pads, strides, dilations and kernel_shape keep Conv's meaning.
// NHWC only: weight_layout = "MHWC" (default, W [M,kH,kW,C/group]) or "HWCM" (W [kH,kW,C/group,M],
// tap-major: convert_layout gives depthwise convolutions this, so that the kernel loads the
// weights of adjacent channels of one tap as one vector).
// input_activation = "" (none), "Clip" (bounds in in_act_min / in_act_max) or "Silu": applied to
// X before the convolution, so Y = act(Conv(in_act(X), W, B) + Z) with zero padding of in_act(X)
// (convert_layout folds the standalone activation before a channels-last depthwise convolution).
#include "ir/activation.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// [N,H,W,C] -> [N,C,H,W] (to_nchw) or back, for rank-4 shapes; other shapes pass unchanged.
Shape permute4(const Shape& s, bool to_nchw) {
  if (!s.rank_known() || s.rank() != 4) return s;
  const auto& d = s.dims();
  return to_nchw ? Shape({d[0], d[3], d[1], d[2]}) : Shape({d[0], d[2], d[3], d[1]});
}

Status infer_conv_act(InferContext& ctx) {
  const OpSchema* conv = OpRegistry::global().find("", "Conv");
  const std::string layout = ctx.node().attr_string("layout", "NCHW");
  if (layout != "NCHW" && layout != "NHWC") return ctx.fail("unknown layout '", layout, "' (NCHW or NHWC)");
  if (layout == "NCHW") {
    KILN_RETURN_IF_ERROR(conv->infer(ctx));  // reads X, W, B only
  } else {
    // Conv's rule on the NCHW views of X and W (W [M,kH,kW,C/g] reads as [M,C/g,kH,kW]).
    if (ctx.input_shape(0).rank_known() && ctx.input_shape(0).rank() != 4)
      return ctx.fail("layout NHWC takes a rank-4 input, got ", ctx.input_shape(0).to_string());
    std::vector<InferContext::Input> ins;
    const std::string wl = ctx.node().attr_string("weight_layout", "MHWC");
    if (wl != "MHWC" && wl != "HWCM") return ctx.fail("unknown weight_layout '", wl, "' (MHWC or HWCM)");
    for (size_t i = 0; i < 3; ++i) {
      InferContext::Input in;
      Shape s = ctx.has_input(i) ? ctx.input_shape(i) : Shape::unknown_rank();
      if (i == 1 && wl == "HWCM" && s.rank_known() && s.rank() == 4) {
        const auto& d = s.dims();  // [kH,kW,C/g,M] -> [M,C/g,kH,kW]
        s = Shape({d[3], d[2], d[0], d[1]});
      } else if (i < 2) {
        s = permute4(s, true);
      }
      if (ctx.has_input(i)) in = {ctx.input_type(i), s, nullptr, true};
      ins.push_back(in);
    }
    InferContext c(ctx.node(), std::move(ins), 1);
    KILN_RETURN_IF_ERROR(conv->infer(c));
    ctx.set_output(0, c.output(0).dtype, permute4(c.output(0).shape, false));
  }
  for (auto [key, slot] : {std::pair{"activation", ActivationSlot::kConvAct}, {"input_activation", ActivationSlot::kConvActInput}})
    if (auto a = read_activation(ctx.node(), key, slot); !a) return ctx.fail(a.status().message());
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
