// Op schemas of the indexing family's selection ops: NonZero, Compress, Unique (outputs whose
// size depends on the data, so their kernels allocate them), TopK, Trilu, ReverseSequence.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, max_in, std::move(infer));
}

// NonZero: int64 [rank, count]; count depends on the data.
Status infer_non_zero(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  Shape out = x.rank_known() ? Shape({Dim(static_cast<int64_t>(x.rank())), Dim::unknown()})
                             : Shape({Dim::unknown(), Dim::unknown()});
  ctx.set_output(0, DataType::kInt64, std::move(out));
  return Status::ok();
}

// Compress: the selected dim (or the flattened input without an axis) depends on the condition.
Status infer_compress(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kBool}));
  const Shape& cond = ctx.input_shape(1);
  if (cond.rank_known() && cond.rank() != 1) return ctx.fail("condition must be 1-D, got ", cond.to_string());
  const Shape& x = ctx.input_shape(0);
  if (!ctx.node().has_attr("axis")) {
    ctx.set_output(0, ctx.input_type(0), Shape({Dim::unknown()}));
    return Status::ok();
  }
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    return Status::ok();
  }
  if (x.rank() == 0) return ctx.fail("input must have rank >= 1 when axis is given");
  KILN_ASSIGN_OR_RETURN(int64_t axis,
                        normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank())));
  Shape out = x;
  out[axis] = Dim::unknown();
  ctx.set_output(0, ctx.input_type(0), std::move(out));
  return Status::ok();
}

// Unique: Y (data-dependent length), indices, inverse_indices, counts (int64 vectors).
Status infer_unique(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  Shape y({Dim::unknown()});
  Dim inverse_len = Dim::unknown();
  if (ctx.node().has_attr("axis")) {
    if (!x.rank_known()) {
      y = Shape::unknown_rank();
    } else {
      if (x.rank() == 0) return ctx.fail("input must have rank >= 1 when axis is given");
      KILN_ASSIGN_OR_RETURN(int64_t axis,
                            normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank())));
      y = x;
      y[axis] = Dim::unknown();
      inverse_len = x[axis];
    }
  } else if (x.rank_known() && x.is_static()) {
    int64_t n = 1;
    for (int64_t d : x.static_dims()) n *= d;
    inverse_len = Dim(n);
  }
  ctx.set_output(0, ctx.input_type(0), std::move(y));
  ctx.set_output(1, DataType::kInt64, Shape({Dim::unknown()}));
  ctx.set_output(2, DataType::kInt64, Shape({inverse_len}));
  ctx.set_output(3, DataType::kInt64, Shape({Dim::unknown()}));
  return Status::ok();
}

// TopK: k is an attribute before opset 10 and a 1-element int64 input from opset 10 on.
Status infer_top_k(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Tensor* k_value = ctx.opset() < 10 ? nullptr : ctx.input_value(1);
  if (ctx.opset() < 10 && !ctx.node().has_attr("k")) return ctx.fail("attribute k is required before opset 10");
  if (ctx.opset() >= 10) {
    if (!ctx.has_input(1)) return ctx.fail("input k is required from opset 10 on");
    KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
    if (k_value && k_value->numel() != 1) return ctx.fail("k must hold one element, got ", k_value->describe());
  }
  Dim k = Dim::unknown();
  if (ctx.opset() < 10 || k_value) {
    const int64_t kv = k_value ? k_value->get_as_int64(0) : ctx.node().attr_int("k", 0);
    if (kv < 0) return ctx.fail("k = ", kv, " must be >= 0");
    k = Dim(kv);
  }
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
    ctx.set_output(1, DataType::kInt64, Shape::unknown_rank());
    return Status::ok();
  }
  if (x.rank() == 0) return ctx.fail("input must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis,
                        normalize_axis(ctx, ctx.node().attr_int("axis", -1), static_cast<int64_t>(x.rank())));
  if (k.is_static() && x[axis].is_static() && k.value() > x[axis].value())
    return ctx.fail("k = ", k.value(), " exceeds the axis ", axis, " size ", x[axis].value());
  Shape out = x;
  out[axis] = k;
  ctx.set_output(0, ctx.input_type(0), out);
  ctx.set_output(1, DataType::kInt64, out);
  return Status::ok();
}

Status infer_trilu(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", x.to_string());
  if (ctx.has_input(1)) {
    KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
    if (const Tensor* k = ctx.input_value(1); k && k->numel() != 1)
      return ctx.fail("k must hold one element, got ", k->describe());
  }
  return infer_same_as_input0(ctx);
}

Status infer_reverse_sequence(InferContext& ctx) {
  const int64_t batch = ctx.node().attr_int("batch_axis", 1), time = ctx.node().attr_int("time_axis", 0);
  if ((batch != 0 && batch != 1) || (time != 0 && time != 1) || batch == time)
    return ctx.fail("batch_axis ", batch, " and time_axis ", time, " must be 0 and 1 in some order");
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt64}));
  const Shape& x = ctx.input_shape(0);
  const Shape& lens = ctx.input_shape(1);
  if (x.rank_known() && x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", x.to_string());
  if (lens.rank_known() && lens.rank() != 1) return ctx.fail("sequence_lens must be 1-D, got ", lens.to_string());
  if (x.rank_known() && lens.rank_known() && x[batch].is_static() && lens[0].is_static() &&
      x[batch].value() != lens[0].value())
    return ctx.fail("sequence_lens has ", lens[0].value(), " entries for batch size ", x[batch].value());
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_indexing_select_ops(OpRegistry& r) {
  r.add(schema("NonZero", 9, 1, 1, infer_non_zero));
  r.add(schema("Compress", 9, 2, 2, infer_compress));
  OpSchema unique = schema("Unique", 11, 1, 1, infer_unique);
  unique.max_outputs = 4;
  r.add(unique);
  OpSchema top_k = schema("TopK", 1, 1, 2, infer_top_k);
  top_k.min_outputs = top_k.max_outputs = 2;
  r.add(top_k);
  r.add(schema("Trilu", 14, 1, 2, infer_trilu));
  r.add(schema("ReverseSequence", 10, 2, 2, infer_reverse_sequence));
}

}  // namespace kiln
