// Op schemas of the resize family: Resize (opset 10 and 11+ forms), Upsample (opset 7
// attribute and opset 9 input forms), GridSample, AffineGrid and RoiAlign.
#include <cmath>

#include "ir/ops/resize_params.h"
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
                    "tf_crop_and_resize", "half_pixel_symmetric"}))
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

// Opset 11+ Resize with known scales or sizes; opset 18's `axes` lists the axes they cover.
Status infer_resize_new_form(InferContext& ctx, const Shape& in, const Tensor* scales, const Tensor* sizes) {
  const Node& n = ctx.node();
  auto axes = resize_axes(n.attr_ints("axes"), in.rank());
  if (!axes) return ctx.fail(axes.status().message());
  std::vector<double> sc = scales ? tensor_doubles(*scales) : std::vector<double>{};
  std::vector<int64_t> sz;
  if (sizes) {
    auto v = sizes->to_int64_vector();
    if (!v) return ctx.fail("sizes: ", v.status().message());
    sz = *v;
  }
  const std::string policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
  // Unknown input dims: compute with placeholders of 1 and keep only what does not depend on them.
  std::vector<int64_t> dims;
  for (size_t d = 0; d < in.rank(); ++d) dims.push_back(in[d].is_static() ? in[d].value() : 1);
  auto plan = resize_plan(dims, *axes, sc, sz, policy);
  if (!plan) return ctx.fail(plan.status().message());
  std::vector<bool> covered(in.rank(), false);
  for (int64_t a : *axes) covered[size_t(a)] = true;
  std::vector<Dim> out;
  for (size_t d = 0; d < in.rank(); ++d) {
    const bool exact = in.is_static() || (sizes ? policy == "stretch" : in[d].is_static());
    out.push_back(!covered[d] ? in[d] : exact ? Dim(plan->out_dims[d]) : Dim::unknown());
  }
  ctx.set_output(0, ctx.input_type(0), Shape(out));
  return Status::ok();
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
  const bool has_sizes = sizes && sizes->numel() > 0, has_scales = scales && scales->numel() > 0;
  if (has_sizes && has_scales) return ctx.fail("only one of 'scales' and 'sizes' may be given");
  if (has_sizes || has_scales) {
    if (!in.rank_known()) {
      ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
      return Status::ok();
    }
    if (!new_form && has_scales) {
      KILN_ASSIGN_OR_RETURN(Shape s, scaled_shape(ctx, in, tensor_doubles(*scales)));
      ctx.set_output(0, ctx.input_type(0), s);
      return Status::ok();
    }
    return infer_resize_new_form(ctx, in, has_scales ? scales : nullptr, has_sizes ? sizes : nullptr);
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

// Opset 20 renamed bilinear/bicubic to linear/cubic and allowed N-d inputs: X [N, C, D1..Dr],
// grid [N, D1_out..Dr_out, r], Y [N, C, D1_out..Dr_out].
Status infer_grid_sample(InferContext& ctx) {
  const Node& n = ctx.node();
  const std::string mode = n.attr_string("mode", "bilinear");
  if (!one_of(mode, {"bilinear", "nearest", "bicubic", "linear", "cubic"}))
    return ctx.fail("unknown mode '", mode, "'");
  if (!one_of(n.attr_string("padding_mode", "zeros"), {"zeros", "border", "reflection"}))
    return ctx.fail("unknown padding_mode '", n.attr_string("padding_mode", ""), "'");
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  const Shape& x = ctx.input_shape(0);
  const Shape& g = ctx.input_shape(1);
  const bool nd = ctx.opset() >= 20;
  if (x.rank_known() && (nd ? x.rank() < 3 : x.rank() != 4)) return ctx.fail("X has unsupported rank: ", x.to_string());
  if (g.rank_known() && (nd ? g.rank() < 3 : g.rank() != 4)) return ctx.fail("grid has unsupported rank: ", g.to_string());
  if (x.rank_known() && g.rank_known()) {
    if (x.rank() != g.rank()) return ctx.fail("X ", x.to_string(), " and grid ", g.to_string(), " ranks differ");
    const Dim& last = g[g.rank() - 1];
    if (last.is_static() && last.value() != int64_t(x.rank() - 2))
      return ctx.fail("grid's last dim must be ", x.rank() - 2, ", got ", g.to_string());
  }
  if (!g.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), x.rank_known() ? unknown_like(x) : Shape::unknown_rank());
    return Status::ok();
  }
  std::vector<Dim> out{x.rank_known() ? x[0] : Dim::unknown(), x.rank_known() ? x[1] : Dim::unknown()};
  for (size_t d = 1; d + 1 < g.rank(); ++d) out.push_back(g[d]);
  ctx.set_output(0, ctx.input_type(0), Shape(out));
  return Status::ok();
}

// AffineGrid(theta [N, 2, 3] or [N, 3, 4], size [N, C, H, W] or [N, C, D, H, W]) ->
// grid [N, H, W, 2] or [N, D, H, W, 3].
Status infer_affine_grid(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  const Shape& theta = ctx.input_shape(0);
  if (theta.rank_known() && theta.rank() != 3) return ctx.fail("theta must have rank 3, got ", theta.to_string());
  if (!ctx.input_value(1)) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> size, input_ints(ctx, 1));
  if (size.size() != 4 && size.size() != 5) return ctx.fail("size must have 4 or 5 values, got ", size.size());
  const int64_t nd = int64_t(size.size()) - 2;
  if (theta.rank_known() && theta.is_static() &&
      (theta[0].value() != size[0] || theta[1].value() != nd || theta[2].value() != nd + 1))
    return ctx.fail("theta ", theta.to_string(), " does not fit size with ", nd, " spatial dims");
  std::vector<Dim> out{Dim(size[0])};
  for (size_t d = 2; d < size.size(); ++d) {
    if (size[d] < 0) return ctx.fail("size has a negative value");
    out.push_back(Dim(size[d]));
  }
  out.push_back(Dim(nd));
  ctx.set_output(0, ctx.input_type(0), Shape(out));
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
  r.add(OpSchema::make("AffineGrid", 20, 2, 2, infer_affine_grid));
  OpSchema ra;
  ra.name = "RoiAlign";
  ra.since_version = 10;
  ra.min_inputs = ra.max_inputs = 3;
  ra.infer = infer_roi_align;
  r.add(ra);
}

}  // namespace kiln
