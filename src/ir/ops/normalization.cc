// Op schemas of the normalization family: BatchNormalization (inference and training forms),
// InstanceNormalization, LayerNormalization, RMSNormalization, GroupNormalization, LRN,
// MeanVarianceNormalization and LpNormalization.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};

// Fails if input i is known to be rank-1 with a static size other than `channels`.
Status require_per_channel(const InferContext& ctx, size_t i, const Dim& channels, const char* what) {
  if (!ctx.has_input(i)) return Status::ok();
  const Shape& s = ctx.input_shape(i);
  if (!s.rank_known()) return Status::ok();
  if (s.rank() != 1) return ctx.fail(what, " must be 1-D, got shape ", s.to_string());
  if (s[0].is_static() && channels.is_static() && s[0].value() != channels.value())
    return ctx.fail(what, " has ", s[0].value(), " elements but the input has ", channels.value(), " channels");
  return Status::ok();
}

// Input 0 is N x C x D1...; returns C (unknown if the rank is unknown); fails on rank < 2.
Expected<Dim> channels_of(const InferContext& ctx, size_t min_rank = 2) {
  const Shape& x = ctx.input_shape(0);
  if (!x.rank_known()) return Dim::unknown();
  if (x.rank() < min_rank) return ctx.fail("input must have rank >= ", min_rank, ", got ", x.to_string());
  return x.rank() >= 2 ? x[1] : Dim(1);
}

Status infer_batch_norm(InferContext& ctx) {
  const Node& n = ctx.node();
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_ASSIGN_OR_RETURN(Dim c, channels_of(ctx, 1));
  // Before opset 9, spatial=0 gives per-element (C x D1 x ...) parameters.
  const bool spatial = ctx.opset() >= 9 || n.attr_int("spatial", 1) != 0;
  if (spatial) {
    const char* names[] = {"scale", "B", "mean", "var"};
    for (size_t i = 1; i < 5; ++i) KILN_RETURN_IF_ERROR(require_per_channel(ctx, i, c, names[i - 1]));
  }
  if (ctx.opset() >= 14 && (n.has_output(3) || n.has_output(4)))
    return ctx.fail("has at most 3 outputs from opset 14");
  ctx.set_output(0, ctx.input_type(0), ctx.input_shape(0));
  const DataType stat_type = ctx.input_type(3) != DataType::kUndefined ? ctx.input_type(3) : ctx.input_type(0);
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, stat_type, ctx.input_shape(3));
  return Status::ok();
}

Status infer_instance_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  KILN_ASSIGN_OR_RETURN(Dim c, channels_of(ctx));
  KILN_RETURN_IF_ERROR(require_per_channel(ctx, 1, c, "scale"));
  KILN_RETURN_IF_ERROR(require_per_channel(ctx, 2, c, "B"));
  return infer_same_as_input0(ctx);
}

Status infer_layer_norm(InferContext& ctx) {
  const Node& n = ctx.node();
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  const int64_t stash = n.attr_int("stash_type", 1);
  if (!dtype_code_known(static_cast<int32_t>(stash)) || !dtype_is_float(static_cast<DataType>(stash)))
    return ctx.fail("stash_type ", stash, " is not a float type");
  ctx.set_output(0, ctx.input_type(0), ctx.input_shape(0));
  const Shape& x = ctx.input_shape(0);
  Shape stat = Shape::unknown_rank();
  if (x.rank_known()) {
    const int64_t rank = static_cast<int64_t>(x.rank());
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, n.attr_int("axis", -1), rank));
    std::vector<Dim> dims(x.dims().begin(), x.dims().begin() + axis);
    dims.resize(x.rank(), Dim(1));
    stat = Shape(std::move(dims));
    // Scale and B broadcast to the normalized dims X.shape[axis:].
    Shape normalized(std::vector<Dim>(x.dims().begin() + axis, x.dims().end()));
    for (size_t i = 1; i < 3; ++i) {
      if (!ctx.has_input(i)) continue;
      const Shape& p = ctx.input_shape(i);
      if (p.rank_known() && p.rank() > normalized.rank())
        return ctx.fail("input ", i, " of shape ", p.to_string(), " does not broadcast to ", normalized.to_string());
      auto b = broadcast_shapes({normalized, p});
      if (!b) return ctx.fail("input ", i, ": ", b.status().message());
    }
  }
  for (size_t i = 1; i < ctx.num_outputs() && i < 3; ++i)
    ctx.set_output(i, static_cast<DataType>(stash), stat);
  return Status::ok();
}

// RMSNormalization (opset 23): like LayerNormalization without the mean, bias or stat outputs.
Status infer_rms_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  const int64_t stash = ctx.node().attr_int("stash_type", 1);
  if (!dtype_code_known(static_cast<int32_t>(stash)) || !dtype_is_float(static_cast<DataType>(stash)))
    return ctx.fail("stash_type ", stash, " is not a float type");
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known()) {
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -1),
                                                       static_cast<int64_t>(x.rank())));
    (void)axis;  // validated; the scale broadcasts to X itself, as in the reference
    const Shape& scale = ctx.input_shape(1);
    if (scale.rank_known() && scale.rank() > x.rank())
      return ctx.fail("scale of shape ", scale.to_string(), " does not broadcast to ", x.to_string());
    auto b = broadcast_shapes({x, scale});
    if (!b) return ctx.fail("scale: ", b.status().message());
  }
  return infer_same_as_input0(ctx);
}

Status infer_group_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  if (!ctx.node().has_attr("num_groups")) return ctx.fail("attribute 'num_groups' is required");
  const int64_t groups = ctx.node().attr_int("num_groups", 1);
  if (groups <= 0) return ctx.fail("num_groups must be positive, got ", groups);
  KILN_ASSIGN_OR_RETURN(Dim c, channels_of(ctx));
  if (c.is_static() && c.value() % groups != 0)
    return ctx.fail(c.value(), " channels do not divide into ", groups, " groups");
  return infer_same_as_input0(ctx);
}

Status infer_lrn(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  if (!ctx.node().has_attr("size")) return ctx.fail("attribute 'size' is required");
  if (ctx.node().attr_int("size", 1) <= 0) return ctx.fail("size must be positive");
  KILN_RETURN_IF_ERROR(channels_of(ctx).status());
  return infer_same_as_input0(ctx);
}

Status infer_mvn(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known())
    for (int64_t a : ctx.node().attr_ints("axes", {0, 2, 3}))
      KILN_RETURN_IF_ERROR(normalize_axis(ctx, a, static_cast<int64_t>(x.rank())).status());
  return infer_same_as_input0(ctx);
}

Status infer_lp_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  const int64_t p = ctx.node().attr_int("p", 2);
  if (p != 1 && p != 2) return ctx.fail("p must be 1 or 2, got ", p);
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known())
    KILN_RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", -1), static_cast<int64_t>(x.rank())).status());
  return infer_same_as_input0(ctx);
}

OpSchema schema(const char* name, int since, int min_in, int max_in, int min_out, int max_out, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).outputs(min_out, max_out);
}

}  // namespace

void register_normalization_ops(OpRegistry& r) {
  r.add(schema("BatchNormalization", 1, 5, 5, 1, 5, infer_batch_norm));
  r.add(schema("InstanceNormalization", 1, 3, 3, 1, 1, infer_instance_norm));
  r.add(schema("LayerNormalization", 17, 2, 3, 1, 3, infer_layer_norm));
  r.add(schema("RMSNormalization", 23, 2, 2, 1, 1, infer_rms_norm));
  r.add(schema("GroupNormalization", 18, 3, 3, 1, 1, infer_group_norm));
  r.add(schema("LRN", 1, 1, 1, 1, 1, infer_lrn));
  r.add(schema("MeanVarianceNormalization", 9, 1, 1, 1, 1, infer_mvn));
  r.add(schema("LpNormalization", 1, 1, 1, 1, 1, infer_lp_norm));
}

}  // namespace kiln
