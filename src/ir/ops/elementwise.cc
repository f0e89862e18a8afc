// Op schemas of the elementwise family: broadcasting binary arithmetic, comparisons and logic,
// unary math, variadic Sum/Mean/Max/Min, Where, Cast/CastLike, Clip.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// Which element types an op accepts; checked at import and run time.
enum class Types { kAny, kNumeric, kFloat, kInteger, kUnsigned, kBool };

bool type_allowed(DataType t, Types allowed) {
  switch (allowed) {
    case Types::kAny: return t != DataType::kString;
    case Types::kNumeric: return dtype_is_float(t) || dtype_is_signed_int(t) || (dtype_is_unsigned_int(t) && t != DataType::kBool);
    case Types::kFloat: return dtype_is_float(t);
    case Types::kInteger: return dtype_is_signed_int(t) || (dtype_is_unsigned_int(t) && t != DataType::kBool);
    case Types::kUnsigned: return dtype_is_unsigned_int(t) && t != DataType::kBool;
    case Types::kBool: return t == DataType::kBool;
  }
  return false;
}

// Fails unless every present input in [first, last) has an allowed type (unknown types pass).
Status require_types(const InferContext& ctx, size_t first, size_t last, Types allowed) {
  for (size_t i = first; i < last && i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    DataType t = ctx.input_type(i);
    if (t == DataType::kUndefined || type_allowed(t, allowed)) continue;
    if (t == DataType::kString) return ctx.fail("input ", i, " of type string is not supported");
    return ctx.fail("input ", i, " has unsupported type ", dtype_name(t));
  }
  return Status::ok();
}

OpSchema schema(const char* name, int since, int min_in, int max_in, FusionKind kind, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).kind(kind);
}

// Before opset 7, `broadcast=1` with `axis` aligns B's dims with A's starting at `axis`:
// B padded with trailing 1s, then numpy broadcasting (the kernel pads the same way).
Status infer_binary_broadcast(InferContext& ctx, DataType out_type) {
  Shape b = ctx.input_shape(1);
  const Shape& a = ctx.input_shape(0);
  if (ctx.opset() < 7 && ctx.node().has_attr("axis") && a.rank_known() && b.rank_known()) {
    int64_t axis = ctx.node().attr_int("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(a.rank());
    int64_t pad = static_cast<int64_t>(a.rank()) - axis - static_cast<int64_t>(b.rank());
    if (axis < 0 || pad < 0) return ctx.fail("attribute axis ", axis, " does not fit input shapes");
    b.dims().resize(b.rank() + static_cast<size_t>(pad), Dim(1));
  }
  auto out = broadcast_shapes({a, b});
  if (!out) return ctx.fail(out.status().message());
  ctx.set_output(0, out_type, std::move(out).value());
  return Status::ok();
}

// Two inputs of one type, broadcast; output of that type (or bool for comparisons).
OpSchema binary(const char* name, int since, Types types, bool bool_out = false) {
  return schema(name, since, 2, 2, FusionKind::kBroadcast, [types, bool_out](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(require_types(ctx, 0, 2, types));
    KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
    return infer_binary_broadcast(ctx, bool_out ? DataType::kBool : ctx.input_type(0));
  });
}

OpSchema unary(const char* name, int since, Types types) {
  return schema(name, since, 1, 1, FusionKind::kPointwise, [types](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(require_types(ctx, 0, 1, types));
    return infer_same_as_input0(ctx);
  });
}

// IsNaN / IsInf: float in, bool out of the same shape.
OpSchema float_predicate(const char* name, int since) {
  return schema(name, since, 1, 1, FusionKind::kPointwise, [](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(require_types(ctx, 0, 1, Types::kFloat));
    ctx.set_output(0, DataType::kBool, ctx.input_shape(0));
    return Status::ok();
  });
}

// Sum / Mean / Max / Min: 1..N inputs of one type, multidirectional broadcast.
OpSchema variadic(const char* name, Types types) {
  return schema(name, 6, 1, -1, FusionKind::kBroadcast, [types](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(require_types(ctx, 0, ctx.num_inputs(), types));
    KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, ctx.num_inputs()));
    return infer_broadcast(ctx);
  });
}

// Pow: base and exponent may have different numeric types (opset 12+); output has the base's.
Status infer_pow(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_types(ctx, 0, 2, Types::kNumeric));
  return infer_binary_broadcast(ctx, ctx.input_type(0));
}

Status infer_mod(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_types(ctx, 0, 2, Types::kNumeric));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  int64_t fmod = ctx.node().attr_int("fmod", 0);
  if (fmod != 0 && fmod != 1) return ctx.fail("attribute fmod must be 0 or 1, got ", fmod);
  return infer_broadcast(ctx);
}

Status infer_bitshift(InferContext& ctx) {
  std::string dir = ctx.node().attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT") return ctx.fail("attribute direction must be LEFT or RIGHT, got '", dir, "'");
  // Signed types came with ONNX 1.23's tests (arithmetic right shift, wrapping left shift).
  KILN_RETURN_IF_ERROR(require_types(ctx, 0, 2, Types::kInteger));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  return infer_broadcast(ctx);
}

Status infer_where(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_types(ctx, 0, 1, Types::kBool));
  KILN_RETURN_IF_ERROR(require_types(ctx, 1, 3, Types::kAny));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 1, 3));
  KILN_RETURN_IF_ERROR(infer_broadcast(ctx));
  ctx.set_output(0, ctx.input_type(1), ctx.output(0).shape);
  where_dims_value(ctx);
  return Status::ok();
}

Status check_cast_target(const InferContext& ctx, int64_t to) {
  if (!dtype_code_known(static_cast<int32_t>(to)) || to == 0)
    return ctx.fail("attribute 'to' is not a known element type: ", to);
  DataType t = static_cast<DataType>(to);
  if (t == DataType::kString) return ctx.fail("cast to string is not supported");
  if (t == DataType::kComplex64 || t == DataType::kComplex128)
    return ctx.fail("cast to ", dtype_name(t), " is not supported");
  return require_types(ctx, 0, 1, Types::kAny);
}

Status infer_cast(InferContext& ctx) {
  if (!ctx.node().has_attr("to")) return ctx.fail("attribute 'to' is required");
  int64_t to = ctx.node().attr_int("to", 0);
  KILN_RETURN_IF_ERROR(check_cast_target(ctx, to));
  ctx.set_output(0, static_cast<DataType>(to), ctx.input_shape(0));
  pass_dims_value(ctx);
  return Status::ok();
}

Status infer_cast_like(InferContext& ctx) {
  DataType to = ctx.input_type(1);
  if (to != DataType::kUndefined) KILN_RETURN_IF_ERROR(check_cast_target(ctx, static_cast<int64_t>(to)));
  ctx.set_output(0, to, ctx.input_shape(0));
  return Status::ok();
}

// Before opset 11 the bounds are float attributes; from 11 optional scalar inputs 1 and 2.
Status infer_clip(InferContext& ctx) {
  if (ctx.opset() < 11 && ctx.num_inputs() > 1) return ctx.fail("takes one input before opset 11");
  KILN_RETURN_IF_ERROR(require_types(ctx, 0, 3, ctx.opset() < 12 ? Types::kFloat : Types::kNumeric));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    const Shape& s = ctx.input_shape(i);
    bool scalar = s.rank_known() && (s.rank() == 0 || (s.rank() == 1 && s[0].is_static() && s[0].value() == 1));
    if (s.rank_known() && s.is_static() && !scalar)
      return ctx.fail("input ", i, " (", i == 1 ? "min" : "max", ") must be a scalar, got shape ", s.to_string());
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_bit_cast_ops(OpRegistry& r);

void register_elementwise_ops(OpRegistry& r) {
  register_bit_cast_ops(r);
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    OpSchema s = binary(op, 1, Types::kNumeric);
    s.infer = [shape = s.infer, sign = "+-*/"[std::string("AddSubMulDiv").find(op) / 3]](InferContext& ctx) {
      KILN_RETURN_IF_ERROR(shape(ctx));
      binary_dims_value(ctx, sign);  // shape arithmetic: Mul(Gather(Shape(x), 0), 12)
      return Status::ok();
    };
    r.add(std::move(s));
  }
  r.add(schema("Pow", 1, 2, 2, FusionKind::kBroadcast, infer_pow));
  r.add(schema("Mod", 10, 2, 2, FusionKind::kBroadcast, infer_mod));
  r.add(schema("BitShift", 11, 2, 2, FusionKind::kBroadcast, infer_bitshift));
  for (const char* op : {"And", "Or", "Xor"}) r.add(binary(op, 1, Types::kBool, true));
  r.add(unary("Not", 1, Types::kBool));
  for (const char* op : {"BitwiseAnd", "BitwiseOr", "BitwiseXor"}) r.add(binary(op, 18, Types::kInteger));
  r.add(unary("BitwiseNot", 18, Types::kInteger));
  OpSchema equal = binary("Equal", 1, Types::kAny, true);
  equal.infer = [shape = equal.infer](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(shape(ctx));
    equal_dims_value(ctx);
    return Status::ok();
  };
  r.add(std::move(equal));
  for (const char* op : {"Less", "Greater"}) r.add(binary(op, 1, Types::kNumeric, true));
  for (const char* op : {"LessOrEqual", "GreaterOrEqual"}) r.add(binary(op, 12, Types::kNumeric, true));
  for (const char* op : {"Neg", "Abs"}) r.add(unary(op, 6, Types::kNumeric));
  r.add(unary("Sign", 9, Types::kNumeric));
  for (const char* op : {"Reciprocal", "Floor", "Ceil", "Sqrt", "Exp", "Log"}) r.add(unary(op, 6, Types::kFloat));
  r.add(unary("Round", 11, Types::kFloat));
  r.add(unary("Erf", 9, Types::kFloat));
  for (const char* op : {"Sin", "Cos", "Tan", "Asin", "Acos", "Atan"}) r.add(unary(op, 7, Types::kFloat));
  for (const char* op : {"Sinh", "Cosh", "Asinh", "Acosh", "Atanh"}) r.add(unary(op, 9, Types::kFloat));
  r.add(float_predicate("IsNaN", 9));
  r.add(float_predicate("IsInf", 10));
  for (const char* op : {"Sum", "Mean"}) r.add(variadic(op, Types::kFloat));
  for (const char* op : {"Max", "Min"}) r.add(variadic(op, Types::kNumeric));
  r.add(schema("Where", 9, 3, 3, FusionKind::kBroadcast, infer_where));
  r.add(schema("Cast", 6, 1, 1, FusionKind::kPointwise, infer_cast));
  r.add(schema("CastLike", 15, 2, 2, FusionKind::kPointwise, infer_cast_like));
  r.add(schema("Clip", 6, 1, 3, FusionKind::kPointwise, infer_clip));
}

}  // namespace kiln
