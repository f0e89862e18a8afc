// Op schemas of the shape family, part 3: ops that make new tensors from shapes or scalars:
// Shape, Size, ConstantOfShape, Range, EyeLike.
#include <algorithm>
#include <cmath>

#include "ir/ops/shape_params.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer));
}

Status infer_shape(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, DataType::kInt64, Shape{Dim::unknown()});
    return Status::ok();
  }
  // Opset 15's start/end slice the shape; out-of-range values clamp.
  const int64_t rank = static_cast<int64_t>(in.rank());
  auto clamp = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  int64_t start = clamp(ctx.node().attr_int("start", 0));
  int64_t end = clamp(ctx.node().attr_int("end", rank));
  ctx.set_output(0, DataType::kInt64, Shape{Dim(std::max<int64_t>(end - start, 0))});
  if (start < end) ctx.set_output_dims_value(0, std::vector<Dim>(in.dims().begin() + start, in.dims().begin() + end));
  return Status::ok();
}

Status infer_size(InferContext& ctx) {
  ctx.set_output(0, DataType::kInt64, Shape{});
  return Status::ok();
}

Status infer_constant_of_shape(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kInt64}));
  DataType dtype = DataType::kFloat32;
  if (const Tensor* v = ctx.node().attr_tensor("value")) {
    if (v->numel() != 1) return ctx.fail("value must hold exactly one element, got ", v->describe());
    dtype = v->dtype();
  }
  Shape out = Shape::unknown_rank();
  if (const Tensor* t = ctx.input_value(0)) {
    auto dims = t->to_int64_vector();
    if (!dims) return ctx.fail(dims.status().message());
    for (int64_t d : *dims)
      if (d < 0) return ctx.fail("shape value ", d, " is negative");
    out = Shape::from_static(*dims);
  } else if (auto dims = size_dims_value(ctx, 0)) {  // a shape the graph computes: [batch, 128]
    out = Shape(std::move(*dims));
  } else if (const Shape& s = ctx.input_shape(0); s.rank_known() && s.rank() == 1 && s[0].is_static()) {
    out = Shape(std::vector<Dim>(s[0].value()));
  }
  ctx.set_output(0, dtype, out);
  // A small integer fill is itself a shape tensor (the exporters' ConstantOfShape(Shape(s)) of ones).
  const Tensor* value = ctx.node().attr_tensor("value");  // without one the fill is float 0: no shape tensor
  if (value && dtype_is_signed_int(dtype) && out.rank() == 1 && out[0].is_static() &&
      out[0].value() <= int64_t(InferContext::kMaxDimsValue)) {
    auto fill = value->to_int64_vector();
    if (fill && fill->size() == 1) ctx.set_output_dims_value(0, std::vector<Dim>(out[0].value(), Dim::integer((*fill)[0])));
  }
  return Status::ok();
}

Status infer_range(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  // float16/bfloat16 came with ONNX 1.23's tests (opset 25's stash_type; computed in double here).
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                             DataType::kBFloat16, DataType::kInt16, DataType::kInt32,
                                             DataType::kInt64}));
  for (size_t i = 0; i < 3; ++i) {
    const Shape& s = ctx.input_shape(i);
    if (const Tensor* t = ctx.input_value(i); t && t->numel() != 1)
      return ctx.fail("input ", i, " must be a scalar, got ", t->describe());
    else if (s.rank_known() && s.rank() > 1) return ctx.fail("input ", i, " must be a scalar, got ", s.to_string());
  }
  const Tensor *a = ctx.input_value(0), *b = ctx.input_value(1), *c = ctx.input_value(2);
  Dim n = Dim::unknown();
  if (a && b && c) {
    const bool is_int = !dtype_is_float(a->dtype());
    if (is_int) {
      int64_t start = a->get_as_int64(0), limit = b->get_as_int64(0), delta = c->get_as_int64(0);
      if (delta == 0) return ctx.fail("delta must not be 0");
      // ceil((limit - start) / delta) in integers, for either sign of delta.
      // 128-bit so extreme int64 endpoints cannot overflow.
      __int128 span = __int128(limit) - start;
      __int128 q = span / delta + ((span % delta != 0) && ((span < 0) == (delta < 0)) ? 1 : 0);
      if (q > INT64_MAX) return ctx.fail("range has too many elements");
      n = Dim(q > 0 ? static_cast<int64_t>(q) : 0);
    } else {
      double start = a->get_as_double(0), limit = b->get_as_double(0), delta = c->get_as_double(0);
      if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta))
        return ctx.fail("start, limit and delta must be finite and delta non-zero");
      // In double first: a count past int64 (or an infinite one, 1e308 / 1e-308) cannot be cast.
      const double count = std::ceil((limit - start) / delta);
      if (count >= 9.2e18) return ctx.fail("range has too many elements");
      n = Dim(count > 0 ? static_cast<int64_t>(count) : 0);
    }
  }
  ctx.set_output(0, ctx.input_type(0), Shape{n});
  return Status::ok();
}

Status infer_eye_like(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known() && in.rank() != 2) return ctx.fail("input must be 2-D, got ", in.to_string());
  DataType dtype = ctx.input_type(0);
  if (ctx.node().has_attr("dtype")) {
    int64_t code = ctx.node().attr_int("dtype", 0);
    if (!dtype_code_known(static_cast<int32_t>(code))) return ctx.fail("unknown dtype ", code);
    dtype = static_cast<DataType>(code);
  }
  ctx.set_output(0, dtype, in.rank_known() ? in : Shape(std::vector<Dim>(2)));
  return Status::ok();
}

}  // namespace

void register_shape_fill_ops(OpRegistry& r) {
  r.add(schema("Shape", 1, 1, 1, infer_shape));
  r.add(schema("Size", 1, 1, 1, infer_size));
  r.add(schema("ConstantOfShape", 9, 1, 1, infer_constant_of_shape));
  r.add(schema("Range", 11, 3, 3, infer_range));
  r.add(schema("EyeLike", 9, 1, 1, infer_eye_like));
}

}  // namespace kiln
