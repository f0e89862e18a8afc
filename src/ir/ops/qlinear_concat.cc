// Op schema of ONNX Runtime's QLinearConcat (domain com.microsoft), which passes/fuse_qdq.cc makes
// of Concat(DequantizeLinear...) -> QuantizeLinear, as ONNX Runtime's QDQ transformer does:
//   QLinearConcat(Y_scale, Y_zero_point, X_1, X_1_scale, X_1_zero_point, ..., X_n, ...) -> Y
//   {axis}
// Every X and Y: int8 or uint8 (Y_zero_point's type), per-tensor scales, an X's zero point 0 when
// omitted; Y is the concatenation
// of the X along `axis` (their other dims equal).
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_qlinear_concat(InferContext& ctx) {
  const size_t n = ctx.num_inputs();
  if (n < 5 || (n - 2) % 3 != 0) return ctx.fail("inputs must be Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) triples");
  if (!ctx.node().has_attr("axis")) return ctx.fail("needs the axis attribute");
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32}));
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt8, DataType::kUInt8}));
  const DataType t = ctx.input_type(1);
  const Shape* first = nullptr;
  for (size_t i = 2; i < n; i += 3) {
    if (!ctx.has_input(i) || !ctx.has_input(i + 1)) return ctx.fail("input ", i, " and its scale (input ", i + 1, ") are required");
    KILN_RETURN_IF_ERROR(require_type(ctx, i + 1, {DataType::kFloat32}));
    if (ctx.input_type(i) != t || (ctx.has_input(i + 2) && ctx.input_type(i + 2) != t))
      return ctx.fail("input ", i, " and its zero point must have Y_zero_point's type ", dtype_name(t));
    if (!first && ctx.input_shape(i).rank_known()) first = &ctx.input_shape(i);
  }
  if (!first) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = int64_t(first->rank());
  if (rank == 0) return ctx.fail("cannot concatenate scalars");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
  std::vector<Dim> out = first->dims();
  Dim total(0);
  for (size_t i = 2; i < n; i += 3) {
    const Shape& s = ctx.input_shape(i);
    if (!s.rank_known()) { total = Dim::unknown(); continue; }
    if (int64_t(s.rank()) != rank) return ctx.fail("input ", i, " has rank ", s.rank(), " but the first has rank ", rank);
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && s[d].is_static() && out[d].is_static() && s[d].value() != out[d].value())
        return ctx.fail("input ", i, " ", s.to_string(), " does not match ", first->to_string(), " off the axis");
    total = total + s[axis];
  }
  out[axis] = total;
  ctx.set_output(0, t, Shape(std::move(out)));
  return Status::ok();
}

}  // namespace

void register_qlinear_concat_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("QLinearConcat", 1, 5, -1, infer_qlinear_concat);
  s.domain = "com.microsoft";
  r.add(std::move(s));
}

}  // namespace kiln
