// Op schemas of the resize family: Resize (opset 10 and 11+ forms), Upsample (opset 7
// attribute and opset 9 input forms), GridSample and RoiAlign.
#include <cmath>

#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

bool one_of(const std::string& s, std::initializer_list<const char*> options) {
  for (const char* o : options)
    if (s == o) return true;
  return false;
}

Status check_resize_attrs(const InferContext& ctx) {
  const Node& n = ctx.node();
  std::string mode = n.attr_string("mode", "nearest");
  bool is_resize = n.op_type == "Resize";
  if (!one_of(mode, {"nearest", "linear", "cubic", "bilinear"}) || (mode == "cubic" && !is_resize))
    return ctx.fail("unsupported mode '", mode, "'");
  std::string ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (!one_of(ctm, {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                    "tf_crop_and_resize"}))
    return ctx.fail("unknown coordinate_transformation_mode '", ctm, "'");
  std::string nm = n.attr_string("nearest_mode", "round_prefer_floor");
  if (!one_of(nm, {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}))
    return ctx.fail("unknown nearest_mode '", nm, "'");
  return Status::ok();
}

// Output dims from known scales: floor(dim * scale), like the ONNX reference.
Expected<Shape> scaled_shape(const InferContext& ctx, const Shape& in, const std::vector<double>& scales) {
  if (in.rank_known() && in.rank() != scales.size())
    return ctx.fail("scales has ", scales.size(), " values for an input of rank ", in.rank());
  std::vector<Dim> dims;
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!(scales[i] > 0) || !(scales[i] < 1e12))
      return ctx.fail("scales[", i, "] = ", scales[i], " must be positive and finite");
    if (in.rank_known() && in[i].is_static())
    {
      double d = std::floor(scales[i] * double(in[i].value()));
      if (d > 4e18) return ctx.fail("output dim ", i, " overflows");
      dims.push_back(Dim(static_cast<int64_t>(d)));
    }
    else
      dims.push_back(Dim::unknown());
  }
  return Shape(dims);
}

std::vector<double> tensor_doubles(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = double(static_cast<float>(t.get_as_double(i)));
  return v;
}

Shape unknown_like(const Shape& in) {
  if (!in.rank_known()) return Shape::unknown_rank();
  return Shape(std::vector<Dim>(in.rank(), Dim::unknown()));
}

Status infer_resize(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_resize_attrs(ctx));
  const Shape& in = ctx.input_shape(0);
  const bool new_form = ctx.node().op_type == "Resize" && ctx.opset() >= 11;
  const size_t scales_idx = new_form ? 2 : 1;
  if (ctx.node().op_type == "Upsample" && ctx.opset() < 9) {
    auto scales = ctx.node().attr_floats("scales");
    if (scales.empty()) return ctx.fail("missing 'scales' attribute");
    KILN_ASSIGN_OR_RETURN(Shape s, scaled_shape(ctx, in, std::vector<double>(scales.begin(), scales.end())));
    ctx.set_output(0, ctx.input_type(0), s);
    return Status::ok();
  }
  const Tensor* sizes = new_form ? ctx.input_value(3) : nullptr;
  const Tensor* scales = ctx.input_value(scales_idx);
  if (sizes && sizes->numel() > 0) {
    if (scales && scales->numel() > 0) return ctx.fail("only one of 'scales' and 'sizes' may be given");
    auto v = sizes->to_int64_vector();
    if (!v) return ctx.fail("sizes: ", v.status().message());
    if (in.rank_known() && in.rank() != v->size())
      return ctx.fail("sizes has ", v->size(), " values for an input of rank ", in.rank());
    for (int64_t d : *v)
      if (d < 0) return ctx.fail("sizes has a negative value ", d);
    ctx.set_output(0, ctx.input_type(0), Shape::from_static(*v));
    return Status::ok();
  }
  if (scales && scales->numel() > 0) {
    KILN_ASSIGN_OR_RETURN(Shape s, scaled_shape(ctx, in, tensor_doubles(*scales)));
    ctx.set_output(0, ctx.input_type(0), s);
    return Status::ok();
  }
  // Run time with neither given is an error; at import time the values may just be unknown.
  const bool all_known = (!ctx.has_input(scales_idx) || scales) && (!new_form || !ctx.has_input(3) || sizes);
  if (all_known) return ctx.fail("one of 'scales' and 'sizes' must be given");
  ctx.set_output(0, ctx.input_type(0), unknown_like(in));
  return Status::ok();
}

OpSchema resize_schema() {
  OpSchema s;
  s.name = "Resize";
  s.since_version = 10;
  s.min_inputs = 1;
  s.max_inputs = 4;
  s.infer = infer_resize;
  return s;
}

OpSchema upsample_schema() {
  OpSchema s;
  s.name = "Upsample";
  s.since_version = 7;
  s.min_inputs = 1;
  s.max_inputs = 2;
  s.infer = infer_resize;
  return s;
}

Status infer_grid_sample(InferContext& ctx) {
  const Node& n = ctx.node();
  if (!one_of(n.attr_string("mode", "bilinear"), {"bilinear", "nearest", "bicubic"}))
    return ctx.fail("unknown mode '", n.attr_string("mode", ""), "'");
  if (!one_of(n.attr_string("padding_mode", "zeros"), {"zeros", "border", "reflection"}))
    return ctx.fail("unknown padding_mode '", n.attr_string("padding_mode", ""), "'");
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  const Shape& x = ctx.input_shape(0);
  const Shape& g = ctx.input_shape(1);
  if (x.rank_known() && x.rank() != 4) return ctx.fail("X must have rank 4, got ", x.to_string());
  if (g.rank_known() && g.rank() != 4) return ctx.fail("grid must have rank 4, got ", g.to_string());
  if (g.rank_known() && g[3].is_static() && g[3].value() != 2)
    return ctx.fail("grid's last dim must be 2, got ", g.to_string());
  Dim nb = x.rank_known() ? x[0] : Dim::unknown(), c = x.rank_known() ? x[1] : Dim::unknown();
  Dim h = g.rank_known() ? g[1] : Dim::unknown(), w = g.rank_known() ? g[2] : Dim::unknown();
  ctx.set_output(0, ctx.input_type(0), Shape({nb, c, h, w}));
  return Status::ok();
}

Status infer_roi_align(InferContext& ctx) {
  const Node& n = ctx.node();
  if (!one_of(n.attr_string("mode", "avg"), {"avg", "max"}))
    return ctx.fail("unknown mode '", n.attr_string("mode", ""), "'");
  if (!one_of(n.attr_string("coordinate_transformation_mode", "half_pixel"), {"half_pixel", "output_half_pixel"}))
    return ctx.fail("unknown coordinate_transformation_mode");
  int64_t oh = n.attr_int("output_height", 1), ow = n.attr_int("output_width", 1);
  if (oh < 1 || ow < 1) return ctx.fail("output_height/output_width must be positive");
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  KILN_RETURN_IF_ERROR(require_type(ctx, 2, {DataType::kInt64}));
  const Shape& x = ctx.input_shape(0);
  const Shape& r = ctx.input_shape(1);
  if (x.rank_known() && x.rank() != 4) return ctx.fail("X must have rank 4, got ", x.to_string());
  if (r.rank_known() && (r.rank() != 2 || (r[1].is_static() && r[1].value() != 4)))
    return ctx.fail("rois must have shape [num_rois, 4], got ", r.to_string());
  Dim nr = r.rank_known() ? r[0] : Dim::unknown(), c = x.rank_known() ? x[1] : Dim::unknown();
  ctx.set_output(0, ctx.input_type(0), Shape({nr, c, Dim(oh), Dim(ow)}));
  return Status::ok();
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  r.add(resize_schema());
  r.add(upsample_schema());
  OpSchema g;
  g.name = "GridSample";
  g.since_version = 16;
  g.min_inputs = g.max_inputs = 2;
  g.infer = infer_grid_sample;
  r.add(g);
  OpSchema ra;
  ra.name = "RoiAlign";
  ra.since_version = 10;
  ra.min_inputs = ra.max_inputs = 3;
  ra.infer = infer_roi_align;
  r.add(ra);
}

}  // namespace kiln
