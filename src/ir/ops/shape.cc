// Op schemas of the shape family, part 1: the view-like ops (Reshape, Flatten, Squeeze,
// Unsqueeze, Identity, Dropout) and the data movers Transpose, Concat, Split. Slicing, padding,
// tiling live in shape_slice.cc; ops that make new tensors from shapes in shape_fill.cc.
#include <algorithm>
#include <numeric>

#include "ir/ops/shape_params.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_shape_slice_ops(OpRegistry& r);
void register_shape_fill_ops(OpRegistry& r);
void register_center_crop_pad_ops(OpRegistry& r);

namespace {

OpSchema schema(const char* name, int since, int min_in, int max_in, FusionKind kind, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer)).kind(kind);
}

Status infer_reshape(InferContext& ctx) {
  if (ctx.has_input(1)) KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  KILN_ASSIGN_OR_RETURN(IntList target, infer_ints(ctx, 1, ctx.opset() < 5 ? "shape" : nullptr));
  if (!target.present) return ctx.fail("needs a target shape");
  if (!target.known && ctx.input_dims_value(1)) {  // built from the input's own dims, say
    auto s = reshape_shape(ctx.input_shape(0), *ctx.input_dims_value(1), ctx.node().attr_int("allowzero", 0) != 0);
    if (!s) return ctx.fail(s.status().message());
    ctx.set_output(0, ctx.input_type(0), std::move(s).value());
    return Status::ok();
  }
  if (!target.known) {
    const Shape& ts = ctx.input_shape(1);
    Shape out = Shape::unknown_rank();
    if (ts.rank_known() && ts.rank() == 1 && ts[0].is_static()) out = Shape(std::vector<Dim>(ts[0].value()));
    ctx.set_output(0, ctx.input_type(0), out);
    return Status::ok();
  }
  auto s = reshape_shape(ctx.input_shape(0), target.values, ctx.node().attr_int("allowzero", 0) != 0);
  if (!s) return ctx.fail(s.status().message());
  ctx.set_output(0, ctx.input_type(0), std::move(s).value());
  pass_dims_value(ctx);  // a shape tensor reshaped to 1-D (the exporters' Reshape(Concat(...), [-1])) keeps its elements
  return Status::ok();
}

Status infer_flatten(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape{Dim::unknown(), Dim::unknown()});
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < -rank || axis > rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  ctx.set_output(0, ctx.input_type(0),
                 Shape{dim_product(in.dims(), 0, axis), dim_product(in.dims(), axis, in.rank())});
  return Status::ok();
}

Status infer_squeeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(IntList axes, infer_ints(ctx, 1, "axes"));
  if (!in.rank_known() || (axes.present && !axes.known)) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  std::vector<int64_t> drop;
  if (axes.present) {
    auto a = normalize_axes(axes.values, rank);
    if (!a) return ctx.fail(a.status().message());
    drop = *a;
    for (int64_t d : drop)
      if (in[d].is_static() && in[d].value() != 1)
        return ctx.fail("cannot squeeze axis ", d, " of shape ", in.to_string(), ": its size is not 1");
  } else {
    for (int64_t d = 0; d < rank; ++d) {
      if (!in[d].is_static()) {  // a symbolic dim might be 1: the result rank is not known
        ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
        return Status::ok();
      }
      if (in[d].value() == 1) drop.push_back(d);
    }
  }
  std::vector<Dim> out;
  for (int64_t d = 0; d < rank; ++d)
    if (std::find(drop.begin(), drop.end(), d) == drop.end()) out.push_back(in[d]);
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  pass_dims_value(ctx);
  return Status::ok();
}

Status infer_unsqueeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(IntList axes, infer_ints(ctx, 1, "axes"));
  if (!axes.present) return ctx.fail("needs axes");
  if (!in.rank_known() || !axes.known) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t out_rank = static_cast<int64_t>(in.rank() + axes.values.size());
  auto a = normalize_axes(axes.values, out_rank);
  if (!a) return ctx.fail(a.status().message());
  std::vector<Dim> out(out_rank);
  size_t next = 0;
  for (int64_t d = 0; d < out_rank; ++d)
    out[d] = std::find(a->begin(), a->end(), d) != a->end() ? Dim(1) : in[next++];
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  pass_dims_value(ctx);
  return Status::ok();
}

Status infer_transpose(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!in.rank_known()) {
    Shape out = perm.empty() ? Shape::unknown_rank() : Shape(std::vector<Dim>(perm.size()));
    ctx.set_output(0, ctx.input_type(0), out);
    return Status::ok();
  }
  const size_t rank = in.rank();
  if (!ctx.node().has_attr("perm")) {
    perm.resize(rank);
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (perm.size() != rank) return ctx.fail("perm has ", perm.size(), " entries for an input of rank ", rank);
  std::vector<Dim> out(rank);
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < rank; ++i) {
    int64_t p = perm[i];
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) return ctx.fail("perm is not a permutation of 0..", rank - 1);
    seen[p] = true;
    out[i] = in[p];
  }
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  return Status::ok();
}

// Joins two dims that must be equal: static wins over symbolic; mismatched statics fail.
Expected<Dim> merge_dim(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static() && a.value() != b.value()) return err("dims ", a.value(), " and ", b.value(), " differ");
  if (a.is_static()) return a;
  if (b.is_static()) return b;
  return a == b ? a : (a.is_symbolic() ? a : b);
}

Status infer_concat(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, ctx.num_inputs()));
  if (!ctx.node().has_attr("axis")) return ctx.fail("needs the axis attribute");
  const Shape* first = nullptr;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.input_shape(i).rank_known()) { first = &ctx.input_shape(i); break; }
  if (!first) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(first->rank());
  if (rank == 0) return ctx.fail("cannot concatenate scalars");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
  std::vector<Dim> out = first->dims();
  Dim total(0);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (!s.rank_known()) { total = Dim::unknown(); continue; }
    if (static_cast<int64_t>(s.rank()) != rank)
      return ctx.fail("input ", i, " has rank ", s.rank(), " but input 0 has rank ", rank);
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis) continue;
      auto m = merge_dim(out[d], s[d]);
      if (!m) return ctx.fail("input ", i, " ", s.to_string(), " does not match ", first->to_string(), " off the axis");
      out[d] = *m;
    }
    total = total.is_static() && s[axis].is_static() ? Dim(total.value() + s[axis].value()) : Dim::unknown();
  }
  out[axis] = total;
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  // A shape tensor put together: each 1-D input's elements, unknown ones for an input of known length.
  if (rank == 1 && dtype_is_signed_int(ctx.input_type(0))) {
    std::vector<Dim> v;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      auto e = ctx.input_dims_value(i);
      const Shape& s = ctx.input_shape(i);
      if (!e && (!s.rank_known() || !s[0].is_static() || size_t(s[0].value()) > InferContext::kMaxDimsValue)) return Status::ok();
      if (e) v.insert(v.end(), e->begin(), e->end());
      else v.resize(v.size() + size_t(s[0].value()));
    }
    ctx.set_output_dims_value(0, std::move(v));
  }
  return Status::ok();
}

// The output sizes of Split along the axis, or an empty vector when they are not known yet.
Expected<std::vector<int64_t>> split_sizes(const InferContext& ctx, const Dim& dim) {
  KILN_ASSIGN_OR_RETURN(IntList split, infer_ints(ctx, 1, "split"));
  const int64_t n = static_cast<int64_t>(ctx.num_outputs());
  if (split.present) {
    if (!split.known) return std::vector<int64_t>{};
    if (static_cast<int64_t>(split.values.size()) != n)
      return ctx.fail("split has ", split.values.size(), " sizes for ", n, " outputs");
    int64_t sum = 0;
    for (int64_t v : split.values) {
      if (v < 0) return ctx.fail("split size ", v, " is negative");
      sum += v;
    }
    if (dim.is_static() && sum != dim.value())
      return ctx.fail("split sizes add up to ", sum, " but the axis has ", dim.value());
    return split.values;
  }
  if (ctx.node().has_attr("num_outputs") && ctx.node().attr_int("num_outputs", 0) != n)
    return ctx.fail("num_outputs is ", ctx.node().attr_int("num_outputs", 0), " but the node has ", n, " outputs");
  if (!dim.is_static()) return std::vector<int64_t>{};
  // Opset 18 lets the last chunk be smaller; before that the axis must divide evenly.
  const int64_t chunk = (dim.value() + n - 1) / n;
  if (ctx.opset() < 18 && dim.value() % n != 0)
    return ctx.fail("axis of size ", dim.value(), " does not split into ", n, " equal parts");
  std::vector<int64_t> sizes;
  for (int64_t i = 0, left = dim.value(); i < n; ++i, left -= chunk) sizes.push_back(std::clamp<int64_t>(left, 0, chunk));
  return sizes;
}

Status infer_split(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output(i, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  if (in.rank() == 0) return ctx.fail("cannot split a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), in.rank()));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> sizes, split_sizes(ctx, in[axis]));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    Shape s = in;
    s[axis] = sizes.empty() ? Dim::unknown() : Dim(sizes[i]);
    ctx.set_output(i, ctx.input_type(0), std::move(s));
  }
  return Status::ok();
}

Status infer_dropout(InferContext& ctx) {
  ctx.set_output(0, ctx.input_type(0), ctx.input_shape(0));
  // The mask was of the input's type before opset 10, bool since.
  if (ctx.num_outputs() > 1)
    ctx.set_output(1, ctx.opset() < 10 ? ctx.input_type(0) : DataType::kBool, ctx.input_shape(0));
  return Status::ok();
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  register_center_crop_pad_ops(r);
  r.add(schema("Reshape", 1, 1, 2, FusionKind::kInjective, infer_reshape));
  r.add(schema("Flatten", 1, 1, 1, FusionKind::kInjective, infer_flatten));
  r.add(schema("Squeeze", 1, 1, 2, FusionKind::kInjective, infer_squeeze));
  r.add(schema("Unsqueeze", 1, 1, 2, FusionKind::kInjective, infer_unsqueeze));
  r.add(schema("Identity", 1, 1, 1, FusionKind::kPointwise, [](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(infer_same_as_input0(ctx));
    pass_dims_value(ctx);
    return Status::ok();
  }));
  r.add(schema("Transpose", 1, 1, 1, FusionKind::kInjective, infer_transpose));
  r.add(schema("Concat", 1, 1, -1, FusionKind::kInjective, infer_concat));
  OpSchema split = schema("Split", 1, 1, 2, FusionKind::kInjective, infer_split);
  split.max_outputs = -1;
  r.add(split);
  OpSchema dropout = schema("Dropout", 1, 1, 3, FusionKind::kPointwise, infer_dropout);
  dropout.max_outputs = 2;
  r.add(dropout);
  register_shape_slice_ops(r);
  register_shape_fill_ops(r);
}

}  // namespace kiln
