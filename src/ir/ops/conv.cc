// Op schemas of the conv family: Conv, ConvTranspose, the integer/quantized ConvInteger,
// QLinearConv, DeformConv (opset 19) and Col2Im (opset 18). Window arithmetic (pads, auto_pad, output sizes) lives in conv_window.h.
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

// DeformConv(X, W, offset, B, mask): Conv's output shape; offset [N, offset_group * 2 * prod(k),
// *out] (2-D only in kiln, like the ONNX reference) and mask [N, offset_group * prod(k), *out].
Status infer_deform_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 5));
  const int64_t og = ctx.node().attr_int("offset_group", 1);
  if (og < 1) return ctx.fail("offset_group must be positive, got ", og);
  if (ctx.input_shape(0).rank_known() && ctx.input_shape(0).rank() != 4)
    return ctx.fail("only 2-D DeformConv is supported, X is ", ctx.input_shape(0).to_string());
  return infer_conv_like(ctx, 0, 1, 3, ctx.input_type(0), false);
}

// Col2Im(input [N, C * prod(block), L], image_shape, block_shape) -> [N, C, *image_shape].
Status infer_col2im(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  KILN_RETURN_IF_ERROR(require_type(ctx, 2, {DataType::kInt64}));
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 3) return ctx.fail("input must have rank 3, got ", x.to_string());
  const Tensor* image = ctx.input_value(1);
  const Tensor* block = ctx.input_value(2);
  Dim n = x.rank_known() ? x[0] : Dim::unknown(), c = Dim::unknown();
  std::vector<int64_t> img, blk;
  if (block) {
    KILN_ASSIGN_OR_RETURN(blk, input_ints(ctx, 2));
    int64_t prod = 1;
    for (int64_t b : blk) {
      if (b < 1) return ctx.fail("block_shape must be positive");
      prod *= b;
    }
    if (x.rank_known() && x[1].is_static()) {
      if (x[1].value() % prod != 0) return ctx.fail("input dim 1 (", x[1].value(), ") is not a multiple of ", prod);
      c = Dim(x[1].value() / prod);
    }
  }
  if (!image) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(img, input_ints(ctx, 1));
  if (block && blk.size() != img.size()) return ctx.fail("image_shape and block_shape lengths differ");
  std::vector<Dim> out{n, c};
  for (int64_t d : img) {
    if (d < 1) return ctx.fail("image_shape must be positive");
    out.push_back(Dim(d));
  }
  ctx.set_output(0, ctx.input_type(0), Shape(out));
  return Status::ok();
}

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).kind(FusionKind::kAnchor);
}

}  // namespace

void register_causal_conv_ops(OpRegistry& r);

void register_conv_ops(OpRegistry& r) {
  register_causal_conv_ops(r);
  r.add(schema("Conv", 1, 2, 3, infer_conv));
  r.add(schema("ConvTranspose", 1, 2, 3, infer_conv_transpose));
  r.add(schema("ConvInteger", 10, 2, 4, infer_conv_integer));
  r.add(schema("QLinearConv", 10, 8, 9, infer_qlinear_conv));
  r.add(schema("DeformConv", 19, 3, 5, infer_deform_conv));
  r.add(OpSchema::make("Col2Im", 18, 3, 3, infer_col2im));
}

}  // namespace kiln
