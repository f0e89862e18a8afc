// Op schemas of the shape family, part 2: ops whose output extents come from index lists or
// block sizes: Slice, Pad, Expand, Tile, DepthToSpace, SpaceToDepth.
#include "ir/ops/shape_params.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).kind(FusionKind::kInjective);
}

// Input dims as numbers, -1 where not static.
std::vector<int64_t> dims_or_minus_one(const Shape& s) {
  std::vector<int64_t> out;
  for (const Dim& d : s.dims()) out.push_back(d.is_static() ? d.value() : -1);
  return out;
}

Status infer_slice(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const bool attrs = ctx.opset() < 10;  // opset 1 takes starts/ends/axes as attributes
  KILN_ASSIGN_OR_RETURN(IntList starts, infer_ints(ctx, 1, attrs ? "starts" : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList ends, infer_ints(ctx, 2, attrs ? "ends" : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList axes, infer_ints(ctx, 3, attrs ? "axes" : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList steps, infer_ints(ctx, 4, nullptr));
  if (!starts.present || !ends.present) return ctx.fail("needs starts and ends");
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  std::vector<Dim> out = in.dims();
  if (!starts.known || !ends.known || (axes.present && !axes.known) || (steps.present && !steps.known)) {
    // Only the axes named in a known `axes` list can change; without it, any can.
    if (axes.present && axes.known) {
      for (int64_t a : axes.values)
        if (a >= -static_cast<int64_t>(out.size()) && a < static_cast<int64_t>(out.size()))
          out[a < 0 ? a + out.size() : a] = Dim::unknown();
    } else {
      for (Dim& d : out) d = Dim::unknown();
    }
    ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
    return Status::ok();
  }
  auto r = resolve_slice(dims_or_minus_one(in), starts.values, ends.values, axes, steps);
  if (!r) return ctx.fail(r.status().message());
  for (size_t d = 0; d < out.size(); ++d)
    if (!(*r)[d].whole) out[d] = (*r)[d].count >= 0 ? Dim((*r)[d].count) : Dim::unknown();
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  // A slice of a shape tensor (Shape(x)[0:2]): the elements it keeps.
  auto elems = ctx.input_dims_value(0);
  if (elems && in.rank() == 1 && (*r)[0].count >= 0) {
    std::vector<Dim> v;
    for (int64_t k = 0; k < (*r)[0].count; ++k) {
      const int64_t i = (*r)[0].start + k * (*r)[0].step;
      if (i < 0 || i >= int64_t(elems->size())) return Status::ok();
      v.push_back((*elems)[size_t(i)]);
    }
    ctx.set_output_dims_value(0, std::move(v));
  }
  return Status::ok();
}

Status infer_pad(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  std::string mode = ctx.node().attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return ctx.fail("unsupported pad mode '", mode, "'");
  const bool attrs = ctx.opset() < 11;
  KILN_ASSIGN_OR_RETURN(IntList pads, infer_ints(ctx, 1, attrs ? (ctx.node().has_attr("paddings") ? "paddings" : "pads") : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList axes, infer_ints(ctx, 3, nullptr));
  if (!pads.present) return ctx.fail("needs pads");
  if (ctx.has_input(2) && ctx.input_type(2) != DataType::kUndefined && ctx.input_type(0) != DataType::kUndefined &&
      ctx.input_type(2) != ctx.input_type(0))
    return ctx.fail("constant_value has type ", dtype_name(ctx.input_type(2)), " but data has ", dtype_name(ctx.input_type(0)));
  if (!in.rank_known() || !pads.known || (axes.present && !axes.known)) {
    Shape s = in.rank_known() ? Shape(std::vector<Dim>(in.rank())) : Shape::unknown_rank();
    ctx.set_output(0, ctx.input_type(0), s);
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  auto full = full_pads(rank, pads.values, axes);
  if (!full) return ctx.fail(full.status().message());
  std::vector<Dim> out(rank);
  for (int64_t d = 0; d < rank; ++d) {
    int64_t extra = (*full)[d] + (*full)[d + rank];
    if (!in[d].is_static()) {
      out[d] = extra == 0 && (*full)[d] == 0 ? in[d] : Dim::unknown();
      continue;
    }
    int64_t n = in[d].value() + extra;
    if (n < 0) return ctx.fail("pads ", (*full)[d], ",", (*full)[d + rank], " crop axis ", d, " of ", in.to_string(), " below 0");
    out[d] = Dim(n);
  }
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  return Status::ok();
}

Status infer_expand(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  const Shape& in = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(IntList target, infer_ints(ctx, 1, nullptr));
  if (target.known) {
    for (int64_t v : target.values)
      if (v < 0) return ctx.fail("shape value ", v, " is negative");
    auto s = broadcast_shapes({in, Shape::from_static(target.values)});
    if (!s) return ctx.fail(s.status().message());
    ctx.set_output(0, ctx.input_type(0), std::move(s).value());
    return Status::ok();
  }
  if (auto dims = size_dims_value(ctx, 1)) {  // a computed target: [batch, 128]
    auto s = broadcast_shapes({in, Shape(std::move(*dims))});
    if (!s) return ctx.fail(s.status().message());
    ctx.set_output(0, ctx.input_type(0), std::move(s).value());
    return Status::ok();
  }
  const Shape& ts = ctx.input_shape(1);
  if (!in.rank_known() || !ts.rank_known() || ts.rank() != 1 || !ts[0].is_static()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  // Target values unknown: only input dims other than 1 are sure to survive.
  const size_t rank = std::max<size_t>(in.rank(), ts[0].value());
  std::vector<Dim> out(rank);
  for (size_t k = 0; k < in.rank(); ++k) {
    const Dim& d = in[k];
    if (d.is_static() && d.value() != 1) out[rank - in.rank() + k] = d;
  }
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  return Status::ok();
}

Status infer_tile(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  KILN_ASSIGN_OR_RETURN(IntList reps, infer_ints(ctx, 1, nullptr));
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  std::vector<Dim> out(in.rank());
  if (reps.known) {
    if (reps.values.size() != in.rank())
      return ctx.fail("repeats has ", reps.values.size(), " values for an input of rank ", in.rank());
    for (size_t d = 0; d < in.rank(); ++d) {
      int64_t r = reps.values[d];
      if (r < 0) return ctx.fail("repeat ", r, " is negative");
      out[d] = in[d].is_static() ? Dim(in[d].value() * r) : (r == 1 ? in[d] : Dim::unknown());
    }
  }
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  return Status::ok();
}

// Checks a [N,C,H,W] input and the blocksize attribute; returns the blocksize.
Expected<int64_t> block_size(const InferContext& ctx) {
  int64_t b = ctx.node().attr_int("blocksize", 0);
  if (b <= 0) return ctx.fail("blocksize must be positive, got ", b);
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known() && in.rank() != 4) return ctx.fail("input must be 4-D, got ", in.to_string());
  return b;
}

Dim scaled(const Dim& d, int64_t mul, int64_t div) {
  if (!d.is_static()) return mul == div ? d : Dim::unknown();
  return Dim(d.value() * mul / div);
}

Status check_divisible(const InferContext& ctx, const Dim& d, int64_t by, const char* what) {
  if (d.is_static() && d.value() % by != 0) return ctx.fail(what, " ", d.value(), " is not a multiple of ", by);
  return Status::ok();
}

Status infer_depth_to_space(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int64_t b, block_size(ctx));
  std::string mode = ctx.node().attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return ctx.fail("mode must be DCR or CRD, got '", mode, "'");
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape(std::vector<Dim>(4)));
    return Status::ok();
  }
  KILN_RETURN_IF_ERROR(check_divisible(ctx, in[1], b * b, "channels"));
  ctx.set_output(0, ctx.input_type(0), Shape{in[0], scaled(in[1], 1, b * b), scaled(in[2], b, 1), scaled(in[3], b, 1)});
  return Status::ok();
}

Status infer_space_to_depth(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int64_t b, block_size(ctx));
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape(std::vector<Dim>(4)));
    return Status::ok();
  }
  KILN_RETURN_IF_ERROR(check_divisible(ctx, in[2], b, "height"));
  KILN_RETURN_IF_ERROR(check_divisible(ctx, in[3], b, "width"));
  ctx.set_output(0, ctx.input_type(0), Shape{in[0], scaled(in[1], b * b, 1), scaled(in[2], 1, b), scaled(in[3], 1, b)});
  return Status::ok();
}

}  // namespace

void register_shape_slice_ops(OpRegistry& r) {
  r.add(schema("Slice", 1, 1, 5, infer_slice));
  r.add(schema("Pad", 1, 1, 4, infer_pad));
  r.add(schema("Expand", 8, 2, 2, infer_expand));
  r.add(schema("Tile", 6, 2, 2, infer_tile));
  r.add(schema("DepthToSpace", 1, 1, 1, infer_depth_to_space));
  r.add(schema("SpaceToDepth", 1, 1, 1, infer_space_to_depth));
}

}  // namespace kiln
