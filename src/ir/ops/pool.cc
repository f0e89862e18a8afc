// Op schemas of the pool family: windowed MaxPool/AveragePool/LpPool, the Global* pools,
// MaxUnpool and MaxRoiPool. Window arithmetic lives in conv_window.h (shared with Conv).
#include "ir/ops/conv_window.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};

// Output i is [N, C, *out] for a windowed pool over input 0.
Status infer_window_pool(InferContext& ctx, bool allow_int8) {
  if (allow_int8) {
    KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                               DataType::kBFloat16, DataType::kInt8, DataType::kUInt8}));
  } else {
    KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  }
  const Node& n = ctx.node();
  if (!n.has_attr("kernel_shape")) return ctx.fail("attribute kernel_shape is required");
  const Shape& x = ctx.input_shape(0);
  Shape out = Shape::unknown_rank();
  if (x.rank_known()) {
    if (x.rank() < 3) return ctx.fail("input must have rank >= 3, got ", x.to_string());
    std::vector<int64_t> in;
    for (size_t i = 2; i < x.rank(); ++i) in.push_back(x[i].is_static() ? x[i].value() : -1);
    auto w = resolve_window(n, in, n.attr_ints("kernel_shape"), n.attr_int("ceil_mode", 0) != 0);
    if (!w) return ctx.fail(w.status().message());
    std::vector<Dim> dims = {x[0], x[1]};
    for (int64_t o : w->out) dims.push_back(o >= 0 ? Dim(o) : Dim::unknown());
    out = Shape(std::move(dims));
  }
  ctx.set_output(0, ctx.input_type(0), out);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DataType::kInt64, out);
  return Status::ok();
}

Status infer_global_pool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  const Shape& x = ctx.input_shape(0);
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), x);
    return Status::ok();
  }
  if (x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", x.to_string());
  std::vector<Dim> dims = {x[0], x[1]};
  for (size_t i = 2; i < x.rank(); ++i) dims.push_back(Dim(1));
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(dims)));
  return Status::ok();
}

// MaxUnpool(X, I, output_shape?): default spatial size (in-1)*stride + kernel - pads.
Status infer_max_unpool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  const Node& n = ctx.node();
  if (!n.has_attr("kernel_shape")) return ctx.fail("attribute kernel_shape is required");
  const Shape& x = ctx.input_shape(0);
  if (ctx.has_input(2)) {
    if (ctx.input_value(2)) {
      KILN_ASSIGN_OR_RETURN(auto dims, input_ints(ctx, 2));
      for (int64_t d : dims) if (d < 0) return ctx.fail("output_shape has a negative dim");
      ctx.set_output(0, ctx.input_type(0), Shape::from_static(dims));
    } else {
      ctx.set_output(0, ctx.input_type(0), x.rank_known() ? Shape(std::vector<Dim>(x.rank())) : x);
    }
    return Status::ok();
  }
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), x);
    return Status::ok();
  }
  if (x.rank() < 3) return ctx.fail("input must have rank >= 3, got ", x.to_string());
  const size_t nd = x.rank() - 2;
  std::vector<int64_t> k = n.attr_ints("kernel_shape"), s = n.attr_ints("strides", std::vector<int64_t>(nd, 1)),
                       p = n.attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
  if (k.size() != nd || s.size() != nd || p.size() != 2 * nd)
    return ctx.fail("kernel_shape/strides/pads do not match input rank ", x.rank());
  std::vector<Dim> dims = {x[0], x[1]};
  for (size_t i = 0; i < nd; ++i) {
    const Dim& d = x[i + 2];
    dims.push_back(d.is_static() ? Dim((d.value() - 1) * s[i] + k[i] - p[i] - p[i + nd]) : Dim::unknown());
  }
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(dims)));
  return Status::ok();
}

// MaxRoiPool(X [N, C, H, W], rois [R, 5]) -> [R, C, pooled_h, pooled_w].
Status infer_max_roi_pool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  std::vector<int64_t> ps = ctx.node().attr_ints("pooled_shape");
  if (ps.size() != 2 || ps[0] < 1 || ps[1] < 1) return ctx.fail("pooled_shape must be 2 positive ints");
  const Shape &x = ctx.input_shape(0), &r = ctx.input_shape(1);
  if (x.rank_known() && x.rank() != 4) return ctx.fail("input must be 4-D, got ", x.to_string());
  if (r.rank_known() && r.rank() != 2) return ctx.fail("rois must be 2-D, got ", r.to_string());
  Dim rois = r.rank_known() ? r[0] : Dim::unknown(), c = x.rank_known() ? x[1] : Dim::unknown();
  ctx.set_output(0, ctx.input_type(0), Shape({rois, c, Dim(ps[0]), Dim(ps[1])}));
  return Status::ok();
}

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer, int max_out = 1) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).outputs(1, max_out);
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  r.add(schema("MaxPool", 1, 1, 1, [](InferContext& c) { return infer_window_pool(c, true); }, 2));
  r.add(schema("AveragePool", 1, 1, 1, [](InferContext& c) { return infer_window_pool(c, false); }));
  r.add(schema("LpPool", 1, 1, 1, [](InferContext& c) { return infer_window_pool(c, false); }));
  r.add(schema("GlobalAveragePool", 1, 1, 1, infer_global_pool));
  r.add(schema("GlobalMaxPool", 1, 1, 1, infer_global_pool));
  r.add(schema("GlobalLpPool", 1, 1, 1, infer_global_pool));
  r.add(schema("MaxUnpool", 9, 2, 3, infer_max_unpool));
  r.add(schema("MaxRoiPool", 1, 2, 2, infer_max_roi_pool));
}

}  // namespace kiln
