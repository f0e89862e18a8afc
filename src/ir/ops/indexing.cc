// Op schemas of the indexing family: Gather, GatherElements, GatherND, Scatter,
// ScatterElements, ScatterND, OneHot. The data-dependent and selection ops (NonZero,
// Compress, Unique, TopK, Trilu, ReverseSequence) are in indexing_select.cc.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_indexing_select_ops(OpRegistry& r);

namespace {

const std::initializer_list<DataType> kIndexTypes = {DataType::kInt32, DataType::kInt64};

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer));
}

// Gather: data[:axis] + indices + data[axis+1:].
Status infer_gather(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, kIndexTypes));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (!data.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  if (data.rank() == 0) return ctx.fail("data must have rank >= 1");
  const int64_t r = static_cast<int64_t>(data.rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), r));
  if (!idx.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  std::vector<Dim> out(data.dims().begin(), data.dims().begin() + axis);
  out.insert(out.end(), idx.dims().begin(), idx.dims().end());
  out.insert(out.end(), data.dims().begin() + axis + 1, data.dims().end());
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  // Elements picked from a shape tensor (Gather(Shape(x), 0) is x's first dim).
  auto elems = ctx.input_dims_value(0);
  const Tensor* index = ctx.input_value(1);
  if (elems && r == 1 && index && index->dims().size() <= 1) {
    auto picks = index->to_int64_vector();
    std::vector<Dim> v;
    for (int64_t k : picks ? *picks : std::vector<int64_t>{}) {
      if (k < 0) k += int64_t(elems->size());
      if (k < 0 || k >= int64_t(elems->size())) return Status::ok();
      v.push_back((*elems)[size_t(k)]);
    }
    if (picks) ctx.set_output_dims_value(0, std::move(v));
  }
  return Status::ok();
}

// GatherElements: output has the indices' shape; data and indices share a rank.
Status infer_gather_elements(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, kIndexTypes));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (data.rank_known()) {
    if (data.rank() == 0) return ctx.fail("data must have rank >= 1");
    KILN_RETURN_IF_ERROR(
        normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(data.rank())).status());
    if (idx.rank_known() && idx.rank() != data.rank())
      return ctx.fail("indices rank ", idx.rank(), " differs from data rank ", data.rank());
  }
  ctx.set_output(0, ctx.input_type(0), idx);
  return Status::ok();
}

// GatherND: indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:].
Status infer_gather_nd(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const int64_t b = ctx.node().attr_int("batch_dims", 0);
  if (b < 0) return ctx.fail("batch_dims ", b, " must be >= 0");
  if (!data.rank_known() || !idx.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(idx.rank());
  if (r < 1 || q < 1) return ctx.fail("data and indices must have rank >= 1");
  if (b >= std::min(r, q)) return ctx.fail("batch_dims ", b, " must be less than both ranks (", r, ", ", q, ")");
  for (int64_t i = 0; i < b; ++i)
    if (data[i].is_static() && idx[i].is_static() && data[i].value() != idx[i].value())
      return ctx.fail("batch dim ", i, " differs: data ", data[i].value(), ", indices ", idx[i].value());
  const Dim& last = idx[q - 1];
  if (!last.is_static()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  if (last.value() < 1 || last.value() > r - b)
    return ctx.fail("indices.shape[-1] = ", last.value(), " must be in [1, ", r - b, "]");
  std::vector<Dim> out(idx.dims().begin(), idx.dims().end() - 1);
  out.insert(out.end(), data.dims().begin() + b + last.value(), data.dims().end());
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  return Status::ok();
}

Status check_reduction(const InferContext& ctx) {
  const std::string red = ctx.node().attr_string("reduction", "none");
  for (const char* ok : {"none", "add", "mul", "max", "min"})
    if (red == ok) return Status::ok();
  return ctx.fail("unknown reduction '", red, "'");
}

bool same_static(const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known()) return true;
  if (a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (a[i].is_static() && b[i].is_static() && a[i].value() != b[i].value()) return false;
  return true;
}

// Scatter / ScatterElements: output is data; indices and updates share a shape and data's rank.
Status infer_scatter_elements(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, kIndexTypes));
  if (ctx.input_type(2) != DataType::kUndefined && ctx.input_type(0) != DataType::kUndefined &&
      ctx.input_type(2) != ctx.input_type(0))
    return ctx.fail("updates type ", dtype_name(ctx.input_type(2)), " differs from data type ",
                    dtype_name(ctx.input_type(0)));
  KILN_RETURN_IF_ERROR(check_reduction(ctx));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (!same_static(idx, ctx.input_shape(2)))
    return ctx.fail("indices ", idx.to_string(), " and updates ", ctx.input_shape(2).to_string(),
                    " must have the same shape");
  if (data.rank_known()) {
    if (data.rank() == 0) return ctx.fail("data must have rank >= 1");
    KILN_RETURN_IF_ERROR(
        normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(data.rank())).status());
    if (idx.rank_known() && idx.rank() != data.rank())
      return ctx.fail("indices rank ", idx.rank(), " differs from data rank ", data.rank());
  }
  return infer_same_as_input0(ctx);
}

// ScatterND: updates.shape must be indices.shape[:-1] + data.shape[indices.shape[-1]:].
Status infer_scatter_nd(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  KILN_RETURN_IF_ERROR(check_reduction(ctx));
  if (ctx.input_type(2) != DataType::kUndefined && ctx.input_type(0) != DataType::kUndefined &&
      ctx.input_type(2) != ctx.input_type(0))
    return ctx.fail("updates type ", dtype_name(ctx.input_type(2)), " differs from data type ",
                    dtype_name(ctx.input_type(0)));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (data.rank_known() && idx.rank_known()) {
    if (data.rank() < 1 || idx.rank() < 1) return ctx.fail("data and indices must have rank >= 1");
    const Dim& last = idx[idx.rank() - 1];
    if (last.is_static()) {
      if (last.value() < 1 || last.value() > static_cast<int64_t>(data.rank()))
        return ctx.fail("indices.shape[-1] = ", last.value(), " must be in [1, ", data.rank(), "]");
      std::vector<Dim> want(idx.dims().begin(), idx.dims().end() - 1);
      want.insert(want.end(), data.dims().begin() + last.value(), data.dims().end());
      if (!same_static(Shape(want), ctx.input_shape(2)))
        return ctx.fail("updates shape ", ctx.input_shape(2).to_string(), " should be ", Shape(want).to_string());
    }
  }
  return infer_same_as_input0(ctx);
}

// OneHot: indices' shape with `depth` inserted at axis; element type of `values`.
Status infer_one_hot(InferContext& ctx) {
  const Shape& idx = ctx.input_shape(0);
  const Shape& vals = ctx.input_shape(2);
  if (vals.rank_known() && (vals.rank() != 1 || (vals[0].is_static() && vals[0].value() != 2)))
    return ctx.fail("values must be a 2-element vector, got ", vals.to_string());
  Dim depth = Dim::unknown();
  if (const Tensor* d = ctx.input_value(1)) {
    if (d->numel() != 1) return ctx.fail("depth must hold one element, got ", d->describe());
    const double v = d->get_as_double(0);
    if (!(v >= 1)) return ctx.fail("depth ", v, " must be >= 1");
    depth = Dim(static_cast<int64_t>(v));
  }
  if (!idx.rank_known()) {
    ctx.set_output(0, ctx.input_type(2), Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t out_rank = static_cast<int64_t>(idx.rank()) + 1;
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -1), out_rank));
  std::vector<Dim> out = idx.dims();
  out.insert(out.begin() + axis, depth);
  ctx.set_output(0, ctx.input_type(2), Shape(std::move(out)));
  return Status::ok();
}

}  // namespace

void register_indexing_ops(OpRegistry& r) {
  r.add(schema("Gather", 1, 2, 2, infer_gather));
  r.add(schema("GatherElements", 11, 2, 2, infer_gather_elements));
  r.add(schema("GatherND", 11, 2, 2, infer_gather_nd));
  r.add(schema("Scatter", 9, 3, 3, infer_scatter_elements));
  r.add(schema("ScatterElements", 11, 3, 3, infer_scatter_elements));
  r.add(schema("ScatterND", 11, 3, 3, infer_scatter_nd));
  r.add(schema("OneHot", 9, 3, 3, infer_one_hot));
  register_indexing_select_ops(r);
}

}  // namespace kiln
