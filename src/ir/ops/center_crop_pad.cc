// Op schema of CenterCropPad (shape family, opset 18): each listed axis is center-cropped or
// zero-padded to the requested length; the other axes stay as they are.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_center_crop_pad(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt32, DataType::kInt64}));
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = int64_t(in.rank());
  std::vector<int64_t> axes = ctx.node().attr_ints("axes");
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  std::vector<bool> seen(size_t(rank), false);
  for (int64_t& a : axes) {
    KILN_ASSIGN_OR_RETURN(a, normalize_axis(ctx, a, rank));
    if (seen[size_t(a)]) return ctx.fail("axis ", a, " is repeated");
    seen[size_t(a)] = true;
  }
  std::vector<Dim> out = in.dims();
  if (!ctx.input_value(1)) {
    for (int64_t a : axes) out[size_t(a)] = Dim::unknown();
  } else {
    KILN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, input_ints(ctx, 1));
    if (shape.size() != axes.size())
      return ctx.fail("shape has ", shape.size(), " values for ", axes.size(), " axes");
    for (size_t i = 0; i < axes.size(); ++i) {
      if (shape[i] < 0) return ctx.fail("shape has a negative value ", shape[i]);
      out[size_t(axes[i])] = Dim(shape[i]);
    }
  }
  ctx.set_output(0, ctx.input_type(0), Shape(out));
  return Status::ok();
}

}  // namespace

void register_center_crop_pad_ops(OpRegistry& r) {
  r.add(OpSchema::make("CenterCropPad", 18, 2, 2, infer_center_crop_pad));
}

}  // namespace kiln
