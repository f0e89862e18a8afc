// Op schemas of the quantize family: QuantizeLinear, DequantizeLinear (per tensor, per axis,
// and blocked with block_size from opset 21; output_dtype from 21/23) and
// DynamicQuantizeLinear.
#include <algorithm>

#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// The element types quantized data may have (QuantizeLinear's output, DequantizeLinear's input).
const std::initializer_list<DataType> kQuantTypes = {
    DataType::kUInt8,       DataType::kInt8,         DataType::kUInt16,         DataType::kInt16,
    DataType::kUInt4,       DataType::kInt4,         DataType::kUInt2,          DataType::kInt2,
    DataType::kFloat8E4M3FN, DataType::kFloat8E4M3FNUZ, DataType::kFloat8E5M2, DataType::kFloat8E5M2FNUZ,
    DataType::kFloat4E2M1};

// Scale/zero point are scalars (per tensor), 1-D of x's `axis` extent (per axis), or, with
// block_size > 0, x's shape with ceil(extent / block_size) on `axis` (blocked).
Status check_quant_params(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Shape& s = ctx.input_shape(1);
  if (ctx.has_input(2)) {
    const Shape& z = ctx.input_shape(2);
    // A scalar and a one-element 1-D tensor both mean "per tensor" (ONNX's own tests mix them).
    auto one = [](const Shape& v) { return v.rank() == 0 || (v.rank() == 1 && v[0].is_static() && v[0].value() == 1); };
    if (s.rank_known() && z.rank_known() && !(s == z) && !(one(s) && one(z))) return ctx.fail("scale ", s.to_string(), " and zero point ", z.to_string(), " differ in shape");
  }
  const int64_t block = ctx.node().attr_int("block_size", 0);
  if (block < 0) return ctx.fail("block_size must be >= 0, got ", block);
  if (!s.rank_known() || !x.rank_known()) return Status::ok();
  if (block > 0) {
    if (s.rank() != x.rank())
      return ctx.fail("blocked quantization needs a scale of x's rank ", x.rank(), ", got ", s.to_string());
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 1), int64_t(x.rank())));
    for (size_t d = 0; d < x.rank(); ++d) {
      if (!s[d].is_static() || !x[d].is_static()) continue;
      const int64_t want = int64_t(d) == axis ? (x[d].value() + block - 1) / block : x[d].value();
      if (s[d].value() != want)
        return ctx.fail("scale ", s.to_string(), " does not fit input ", x.to_string(), " with block_size ", block,
                        " on axis ", axis, " (dimension ", d, " should be ", want, ")");
    }
    return Status::ok();
  }
  if (s.rank() == 0) return Status::ok();
  if (s.rank() != 1) return ctx.fail("scale must be a scalar or 1-D without block_size, got ", s.to_string());
  if (s[0].is_static() && s[0].value() == 1) return Status::ok();
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 1), int64_t(x.rank())));
  if (s[0].is_static() && x[axis].is_static() && s[0].value() != x[axis].value())
    return ctx.fail("scale has ", s[0].value(), " values but axis ", axis, " of input ", x.to_string(), " has ", x[axis].value());
  return Status::ok();
}

// output_dtype (0 = unset) must be a type the op can produce.
Expected<DataType> output_dtype(InferContext& ctx, std::initializer_list<DataType> allowed) {
  const int64_t code = ctx.node().attr_int("output_dtype", 0);
  if (code == 0) return DataType::kUndefined;
  for (DataType t : allowed)
    if (static_cast<int64_t>(t) == code) return t;
  return err("output_dtype ", code, " is not a type this op produces");
}

Status infer_quantize(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16,
                                             DataType::kFloat64, DataType::kInt32}));
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(require_type(ctx, 2, kQuantTypes));
  KILN_RETURN_IF_ERROR(check_quant_params(ctx));
  auto out = output_dtype(ctx, kQuantTypes);
  if (!out) return ctx.fail(out.status().message());
  DataType t = *out == DataType::kUndefined ? DataType::kUInt8 : *out;
  if (ctx.has_input(2) && ctx.input_type(2) != DataType::kUndefined) {
    if (*out != DataType::kUndefined && *out != ctx.input_type(2))
      return ctx.fail("output_dtype ", dtype_name(*out), " differs from the zero point's type ", dtype_name(ctx.input_type(2)));
    t = ctx.input_type(2);
  }
  ctx.set_output(0, t, ctx.input_shape(0));
  return Status::ok();
}

Status infer_dequantize(InferContext& ctx) {
  std::initializer_list<DataType> in_types = kQuantTypes;
  std::vector<DataType> allowed(in_types);
  allowed.push_back(DataType::kInt32);
  DataType x = ctx.input_type(0);
  if (x != DataType::kUndefined && std::find(allowed.begin(), allowed.end(), x) == allowed.end())
    return ctx.fail("input 0 has unsupported type ", dtype_name(x));
  if (ctx.has_input(2)) {
    DataType z = ctx.input_type(2);
    if (x != DataType::kUndefined && z != DataType::kUndefined && x != z)
      return ctx.fail("zero point type ", dtype_name(z), " differs from input type ", dtype_name(x));
  }
  KILN_RETURN_IF_ERROR(check_quant_params(ctx));
  auto out = output_dtype(ctx, {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16});
  if (!out) return ctx.fail(out.status().message());
  DataType t = *out;
  if (t == DataType::kUndefined) t = ctx.input_type(1) == DataType::kUndefined ? DataType::kFloat32 : ctx.input_type(1);
  if (t == DataType::kFloat8E8M0) return ctx.fail("a float8e8m0 scale needs output_dtype");
  ctx.set_output(0, t, ctx.input_shape(0));
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
