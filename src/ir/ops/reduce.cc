// Op schemas of the reduce family: Reduce* (axes as attribute or, from opset 13 for ReduceSum
// and 18 for the others, as optional input 1), ArgMax/ArgMin and CumSum.
#include <algorithm>
#include <set>

#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kNumeric = {
    DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16,
    DataType::kInt8,    DataType::kInt16,   DataType::kInt32,   DataType::kInt64,
    DataType::kUInt8,   DataType::kUInt16,  DataType::kUInt32,  DataType::kUInt64};

// The opset from which `op` takes its axes as input 1 instead of an attribute.
int axes_input_since(const std::string& op) { return op == "ReduceSum" ? 13 : 18; }

// Output shape of a reduction over known axes (already normalized, deduplicated).
Shape reduced_shape(const Shape& in, const std::set<int64_t>& axes, bool keepdims) {
  std::vector<Dim> dims;
  for (size_t k = 0; k < in.rank(); ++k) {
    const bool reduced = axes.count(static_cast<int64_t>(k)) != 0;
    if (!reduced) dims.push_back(in[k]);
    else if (keepdims) dims.push_back(Dim(1));
  }
  return Shape(std::move(dims));
}

Status infer_reduce(InferContext& ctx) {
  const Node& n = ctx.node();
  // Opset 20 lets ReduceMax/ReduceMin take bool (any/all).
  const bool bool_ok = ctx.opset() >= 20 && (n.op_type == "ReduceMax" || n.op_type == "ReduceMin");
  if (!(bool_ok && ctx.input_type(0) == DataType::kBool)) KILN_RETURN_IF_ERROR(require_type(ctx, 0, kNumeric));
  const bool keepdims = n.attr_int("keepdims", 1) != 0;
  const bool noop_empty = n.attr_int("noop_with_empty_axes", 0) != 0;
  const Shape& in = ctx.input_shape(0);
  const DataType t = ctx.input_type(0);

  std::vector<int64_t> axes;
  if (ctx.opset() >= axes_input_since(n.op_type)) {
    if (n.has_attr("axes")) return ctx.fail("attribute 'axes' is not allowed from opset ", axes_input_since(n.op_type));
    if (ctx.has_input(1)) {
      if (!ctx.input_value(1)) {  // axes unknown until run time
        if (keepdims && in.rank_known()) {
          ctx.set_output(0, t, Shape(std::vector<Dim>(in.rank(), Dim::unknown())));
        } else {
          ctx.set_output(0, t, Shape::unknown_rank());
        }
        return Status::ok();
      }
      KILN_ASSIGN_OR_RETURN(axes, input_ints(ctx, 1));
    }
  } else {
    if (ctx.has_input(1)) return ctx.fail("takes no axes input before opset ", axes_input_since(n.op_type));
    axes = n.attr_ints("axes");
  }
  if (axes.empty() && noop_empty) return infer_same_as_input0(ctx);
  if (!in.rank_known()) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  std::set<int64_t> norm;
  if (axes.empty()) {
    for (int64_t k = 0; k < rank; ++k) norm.insert(k);
  }
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return ctx.fail("axis ", a, " is out of range for rank ", rank);
    norm.insert(a < 0 ? a + rank : a);
  }
  ctx.set_output(0, t, reduced_shape(in, norm, keepdims));
  return Status::ok();
}

OpSchema reduce_op(const char* name, int since) {
  OpSchema s;
  s.name = name;
  s.since_version = since;
  s.min_inputs = 1;
  s.max_inputs = 2;
  s.fusion_kind = FusionKind::kReduce;
  s.infer = infer_reduce;
  return s;
}

Status infer_arg(InferContext& ctx) {
  const Node& n = ctx.node();
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kNumeric));
  const bool keepdims = n.attr_int("keepdims", 1) != 0;
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, DataType::kInt64, Shape::unknown_rank());
    return Status::ok();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  const int64_t axis = n.attr_int("axis", 0);
  if (axis < -rank || axis >= rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (in[a].is_static() && in[a].value() == 0) return ctx.fail("cannot take ", n.op_type, " over an empty axis");
  ctx.set_output(0, DataType::kInt64, reduced_shape(in, {a}, keepdims));
  return Status::ok();
}

OpSchema arg_op(const char* name) {
  OpSchema s;
  s.name = name;
  s.since_version = 1;
  s.min_inputs = s.max_inputs = 1;
  s.fusion_kind = FusionKind::kReduce;
  s.infer = infer_arg;
  return s;
}

Status infer_cumsum(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kNumeric));
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt32, DataType::kInt64}));
  const Shape& axis_shape = ctx.input_shape(1);
  if (axis_shape.rank_known() && axis_shape.rank() > 1) return ctx.fail("axis must be a scalar");
  if (const Tensor* axis = ctx.input_value(1); axis && ctx.input_shape(0).rank_known()) {
    if (axis->numel() != 1) return ctx.fail("axis must hold one value, got ", axis->describe());
    KILN_RETURN_IF_ERROR(
        normalize_axis(ctx, axis->get_as_int64(0), static_cast<int64_t>(ctx.input_shape(0).rank())).status());
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                         "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})
    r.add(reduce_op(op, 1));
  r.add(arg_op("ArgMax"));
  r.add(arg_op("ArgMin"));
  OpSchema cumsum;
  cumsum.name = "CumSum";
  cumsum.since_version = 11;
  cumsum.min_inputs = cumsum.max_inputs = 2;
  cumsum.infer = infer_cumsum;
  r.add(cumsum);
  OpSchema cumprod = cumsum;
  cumprod.name = "CumProd";
  cumprod.since_version = 24;  // ONNX: 26; the importer reads newer models as opset 24 (kMaxOpset)
  r.add(cumprod);
}

}  // namespace kiln
