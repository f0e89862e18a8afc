// Op schemas of the detection family: NonMaxSuppression.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// selected_indices is [num_selected, 3] int64; num_selected depends on the data, so the
// kernel allocates the output itself.
Status infer_nms(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32}));
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kFloat32}));
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(require_type(ctx, 2, {DataType::kInt64}));
  for (size_t i : {size_t(3), size_t(4)})
    if (ctx.has_input(i)) KILN_RETURN_IF_ERROR(require_type(ctx, i, {DataType::kFloat32}));
  int64_t cpb = ctx.node().attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) return ctx.fail("center_point_box must be 0 or 1, got ", cpb);
  const Shape& b = ctx.input_shape(0);
  const Shape& s = ctx.input_shape(1);
  if (b.rank_known() && (b.rank() != 3 || (b[2].is_static() && b[2].value() != 4)))
    return ctx.fail("boxes must have shape [num_batches, spatial_dimension, 4], got ", b.to_string());
  if (s.rank_known() && s.rank() != 3)
    return ctx.fail("scores must have shape [num_batches, num_classes, spatial_dimension], got ", s.to_string());
  if (b.rank_known() && s.rank_known()) {
    if (b[0].is_static() && s[0].is_static() && b[0] != s[0])
      return ctx.fail("boxes batch ", b[0].to_string(), " != scores batch ", s[0].to_string());
    if (b[1].is_static() && s[2].is_static() && b[1] != s[2])
      return ctx.fail("boxes have ", b[1].to_string(), " boxes but scores ", s[2].to_string());
  }
  ctx.set_output(0, DataType::kInt64, Shape({Dim::unknown(), Dim(3)}));
  return Status::ok();
}

}  // namespace

void register_detection_ops(OpRegistry& r) {
  OpSchema s;
  s.name = "NonMaxSuppression";
  s.since_version = 10;
  s.min_inputs = 2;
  s.max_inputs = 5;
  s.infer = infer_nms;
  r.add(s);
}

}  // namespace kiln
