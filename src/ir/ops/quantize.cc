// Op schemas of the quantize family: QuantizeLinear, DequantizeLinear (per tensor or per
// axis) and DynamicQuantizeLinear.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// Scale/zero point are scalars (per tensor) or 1-D of x's `axis` extent (per axis, opset 13).
Status check_quant_params(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Shape& s = ctx.input_shape(1);
  if (ctx.has_input(2)) {
    const Shape& z = ctx.input_shape(2);
    if (s.rank_known() && z.rank_known() && !(s == z)) return ctx.fail("scale ", s.to_string(), " and zero point ", z.to_string(), " differ in shape");
  }
  if (!s.rank_known() || s.rank() == 0) return Status::ok();
  if (s.rank() != 1) return ctx.fail("scale must be a scalar or 1-D, got ", s.to_string());
  if (s[0].is_static() && s[0].value() == 1) return Status::ok();
  if (!x.rank_known()) return Status::ok();
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 1), int64_t(x.rank())));
  if (s[0].is_static() && x[axis].is_static() && s[0].value() != x[axis].value())
    return ctx.fail("scale has ", s[0].value(), " values but axis ", axis, " of input ", x.to_string(), " has ", x[axis].value());
  return Status::ok();
}

Status infer_quantize(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16,
                                             DataType::kFloat64, DataType::kInt32}));
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(require_type(ctx, 2, {DataType::kUInt8, DataType::kInt8}));
  KILN_RETURN_IF_ERROR(check_quant_params(ctx));
  ctx.set_output(0, ctx.has_input(2) ? ctx.input_type(2) : DataType::kUInt8, ctx.input_shape(0));
  return Status::ok();
}

Status infer_dequantize(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kUInt8, DataType::kInt8, DataType::kInt32}));
  if (ctx.has_input(2)) {
    DataType x = ctx.input_type(0), z = ctx.input_type(2);
    if (x != DataType::kUndefined && z != DataType::kUndefined && x != z)
      return ctx.fail("zero point type ", dtype_name(z), " differs from input type ", dtype_name(x));
  }
  KILN_RETURN_IF_ERROR(check_quant_params(ctx));
  DataType out = ctx.input_type(1) == DataType::kUndefined ? DataType::kFloat32 : ctx.input_type(1);
  ctx.set_output(0, out, ctx.input_shape(0));
  return Status::ok();
}

Status infer_dynamic_quantize(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32}));
  ctx.set_output(0, DataType::kUInt8, ctx.input_shape(0));
  ctx.set_output(1, DataType::kFloat32, Shape());
  ctx.set_output(2, DataType::kUInt8, Shape());
  return Status::ok();
}

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer, int outs = 1) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).outputs(outs, outs).kind(FusionKind::kPointwise);
}

}  // namespace

void register_quantize_ops(OpRegistry& r) {
  r.add(schema("QuantizeLinear", 10, 2, 3, infer_quantize));
  r.add(schema("DequantizeLinear", 10, 2, 3, infer_dequantize));
  r.add(schema("DynamicQuantizeLinear", 11, 1, 1, infer_dynamic_quantize, 3));
}

}  // namespace kiln
