// Op schemas of the activation family: pointwise activations (same type and shape as the
// input), PRelu (slope broadcast to X), and the per-axis Softmax/LogSoftmax/Hardmax.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status require_float(const InferContext& ctx, size_t i) {
  return require_type(ctx, i, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16});
}

// Relu (opset 14) and Shrink (opset 9) also accept integers; LeakyRelu and friends only floats.
Status require_numeric(const InferContext& ctx, size_t i) {
  DataType t = ctx.input_type(i);
  if (t == DataType::kUndefined || dtype_is_float(t) || dtype_is_signed_int(t) ||
      (dtype_is_unsigned_int(t) && t != DataType::kBool))
    return Status::ok();
  return ctx.fail("input ", i, " has unsupported type ", dtype_name(t));
}

OpSchema pointwise(const char* name, int since, bool integers_ok = false) {
  OpSchema s;
  s.name = name;
  s.since_version = since;
  s.min_inputs = s.max_inputs = 1;
  s.fusion_kind = FusionKind::kPointwise;
  s.infer = [integers_ok](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(integers_ok ? require_numeric(ctx, 0) : require_float(ctx, 0));
    return infer_same_as_input0(ctx);
  };
  return s;
}

// Before opset 7 a 1-D slope of X's channel count applies per channel (axis 1), as in
// Caffe2/PyTorch; from 7 on it broadcasts numpy-style (unidirectionally) to X.
Shape prelu_slope_shape(const InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Shape& s = ctx.input_shape(1);
  if (ctx.opset() >= 7 || !x.rank_known() || x.rank() < 2 || !s.rank_known() || s.rank() != 1 ||
      !s[0].is_static() || s[0].value() == 1 || s[0] != x[1])
    return s;
  std::vector<Dim> dims(x.rank() - 1, Dim(1));
  dims[0] = s[0];
  return Shape(std::move(dims));
}

Status infer_prelu(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_numeric(ctx, 0));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  auto out = broadcast_shapes({ctx.input_shape(0), prelu_slope_shape(ctx)});
  if (!out) return ctx.fail(out.status().message());
  ctx.set_output(0, ctx.input_type(0), std::move(out).value());
  return Status::ok();
}

Status infer_gelu(InferContext& ctx) {
  std::string approx = ctx.node().attr_string("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return ctx.fail("attribute approximate must be 'none' or 'tanh', got '", approx, "'");
  KILN_RETURN_IF_ERROR(require_float(ctx, 0));
  return infer_same_as_input0(ctx);
}

// SwiGLU: Swish(A) * B for A and B of one type and shape (no broadcasting).
Status infer_swiglu(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_float(ctx, 0));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  const Shape &a = ctx.input_shape(0), &b = ctx.input_shape(1);
  if (a.rank_known() && b.rank_known()) {
    bool same = a.rank() == b.rank();
    for (size_t i = 0; same && i < a.rank(); ++i)
      same = !a[i].is_static() || !b[i].is_static() || a[i].value() == b[i].value();
    if (!same) return ctx.fail("A ", a.to_string(), " and B ", b.to_string(), " must have the same shape");
  }
  return infer_same_as_input0(ctx);
}

// Softmax family: axis defaults to 1 before opset 13 (input coerced to 2D there), -1 after.
Status infer_softmax(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_float(ctx, 0));
  const Shape& s = ctx.input_shape(0);
  if (s.rank_known()) {
    int64_t axis = ctx.node().attr_int("axis", ctx.opset() < 13 ? 1 : -1);
    int64_t rank = static_cast<int64_t>(s.rank());
    // Before 13 axis == rank is legal (an empty trailing 2D dimension): accept [-r, r].
    if (!(ctx.opset() < 13 && axis == rank)) KILN_RETURN_IF_ERROR(normalize_axis(ctx, axis, rank).status());
  }
  return infer_same_as_input0(ctx);
}

OpSchema softmax_like(const char* name) {
  OpSchema s = pointwise(name, 1);
  s.fusion_kind = FusionKind::kReduce;
  s.infer = infer_softmax;
  return s;
}

}  // namespace

void register_activation_ops(OpRegistry& r) {
  r.add(pointwise("Relu", 6, true));
  for (const char* op : {"LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "Tanh"}) r.add(pointwise(op, 6));
  r.add(pointwise("Celu", 12));
  r.add(pointwise("HardSwish", 14));
  for (const char* op : {"Softplus", "Softsign"}) r.add(pointwise(op, 1));
  r.add(pointwise("ThresholdedRelu", 10));
  r.add(pointwise("Shrink", 9, true));
  r.add(pointwise("Mish", 18));
  r.add(pointwise("Swish", 24));
  // SwiGLU is newer than opset 24, kiln's newest: newer models read as 24 (importer), so 24.
  OpSchema swiglu = pointwise("SwiGLU", 24);
  swiglu.min_inputs = swiglu.max_inputs = 2;
  swiglu.infer = infer_swiglu;
  swiglu.fusion_kind = FusionKind::kOpaque;  // halves the last axis: not elementwise
  r.add(std::move(swiglu));
  OpSchema gelu = pointwise("Gelu", 20);
  gelu.infer = infer_gelu;
  r.add(std::move(gelu));
  OpSchema prelu = pointwise("PRelu", 6, true);
  prelu.min_inputs = prelu.max_inputs = 2;
  prelu.fusion_kind = FusionKind::kBroadcast;
  prelu.infer = infer_prelu;
  r.add(std::move(prelu));
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"}) r.add(softmax_like(op));
}

}  // namespace kiln
