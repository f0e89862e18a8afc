// Op schemas of the conv family: Conv, ConvTranspose and the integer/quantized ConvInteger,
// QLinearConv. Window arithmetic (pads, auto_pad, output sizes) lives in conv_window.h.
#include "ir/ops/conv_window.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

int64_t static_or(const Dim& d) { return d.is_static() ? d.value() : -1; }

// X [N, C, *spatial], W [M, C/group, *k] (transposed: [C, M/group, *k]).
Status infer_conv_like(InferContext& ctx, size_t xi, size_t wi, size_t bi, DataType out_type, bool transpose) {
  const Shape& x = ctx.input_shape(xi);
  const Shape& w = ctx.input_shape(wi);
  const Node& n = ctx.node();
  const int64_t group = n.attr_int("group", 1);
  if (group < 1) return ctx.fail("group must be positive, got ", group);
  if (!x.rank_known()) {
    ctx.set_output(0, out_type, Shape::unknown_rank());
    return Status::ok();
  }
  if (x.rank() < 3) return ctx.fail("input must have rank >= 3, got ", x.to_string());
  const size_t nd = x.rank() - 2;
  if (w.rank_known() && w.rank() != x.rank())
    return ctx.fail("weights ", w.to_string(), " do not match input ", x.to_string());
  std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
  if (kernel.empty())
    for (size_t i = 0; i < nd; ++i) kernel.push_back(w.rank_known() ? static_or(w[i + 2]) : -1);
  std::vector<int64_t> in;
  for (size_t i = 0; i < nd; ++i) in.push_back(static_or(x[i + 2]));
  bool kernel_known = true;
  for (int64_t k : kernel) kernel_known &= k >= 0;
  std::vector<Dim> out = {x[0], Dim::unknown()};
  if (w.rank_known()) {
    const Dim &c_in = x[1], &w0 = w[0], &w1 = w[1];
    if (!transpose && c_in.is_static() && w1.is_static() && c_in.value() != w1.value() * group)
      return ctx.fail("input has ", c_in.value(), " channels but weights ", w.to_string(), " with group ", group,
                      " expect ", w1.value() * group);
    if (transpose && c_in.is_static() && w0.is_static() && c_in.value() != w0.value())
      return ctx.fail("input has ", c_in.value(), " channels but weights ", w.to_string(), " expect ", w0.value());
    if (!transpose && w0.is_static() && w0.value() % group != 0)
      return ctx.fail("output channels ", w0.value(), " are not divisible by group ", group);
    if (transpose) out[1] = w1.is_static() ? Dim(w1.value() * group) : Dim::unknown();
    else out[1] = w0;
  }
  if (ctx.has_input(bi) && ctx.input_shape(bi).rank_known() && ctx.input_shape(bi).rank() != 1)
    return ctx.fail("bias must be 1-D, got ", ctx.input_shape(bi).to_string());
  if (!kernel_known) {
    for (size_t i = 0; i < nd; ++i) out.push_back(Dim::unknown());
  } else {
    auto win = transpose ? resolve_transpose_window(n, in, kernel) : resolve_window(n, in, kernel, false);
    if (!win) return ctx.fail(win.status().message());
    for (int64_t o : win->out) out.push_back(o >= 0 ? Dim(o) : Dim::unknown());
  }
  ctx.set_output(0, out_type, Shape(std::move(out)));
  return Status::ok();
}

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};
const std::initializer_list<DataType> kInt8s = {DataType::kInt8, DataType::kUInt8};

Status infer_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  return infer_conv_like(ctx, 0, 1, 2, ctx.input_type(0), false);
}

Status infer_conv_transpose(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  return infer_conv_like(ctx, 0, 1, 2, ctx.input_type(0), true);
}

Status infer_conv_integer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kInt8s));
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, kInt8s));
  return infer_conv_like(ctx, 0, 1, 99, DataType::kInt32, false);
}

// QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): y has y_zp's type.
Status infer_qlinear_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kInt8s));
  KILN_RETURN_IF_ERROR(require_type(ctx, 3, kInt8s));
  KILN_RETURN_IF_ERROR(require_type(ctx, 7, kInt8s));
  if (ctx.has_input(8)) KILN_RETURN_IF_ERROR(require_type(ctx, 8, {DataType::kInt32}));
  return infer_conv_like(ctx, 0, 3, 8, ctx.input_type(7), false);
}

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).kind(FusionKind::kAnchor);
}

}  // namespace

void register_conv_ops(OpRegistry& r) {
  r.add(schema("Conv", 1, 2, 3, infer_conv));
  r.add(schema("ConvTranspose", 1, 2, 3, infer_conv_transpose));
  r.add(schema("ConvInteger", 10, 2, 4, infer_conv_integer));
  r.add(schema("QLinearConv", 10, 8, 9, infer_qlinear_conv));
}

}  // namespace kiln
