// Op schemas of the loss family: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
// Both take scores [N, C, d1...], integer targets [N, d1...] and optional class weights [C].
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_loss(InferContext& ctx) {
  const Node& n = ctx.node();
  KILN_RETURN_IF_ERROR(
      require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16}));
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, {DataType::kInt32, DataType::kInt64}));
  if (ctx.has_input(2) && ctx.input_type(2) != DataType::kUndefined && ctx.input_type(0) != ctx.input_type(2))
    return ctx.fail("weights have type ", dtype_name(ctx.input_type(2)), " but the input has ",
                    dtype_name(ctx.input_type(0)));
  const std::string reduction = n.attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    return ctx.fail("reduction must be none, sum or mean, got '", reduction, "'");

  const Shape& x = ctx.input_shape(0);
  const Shape& t = ctx.input_shape(1);
  Shape per_element = Shape::unknown_rank();  // [N, d1, ...]
  if (x.rank_known()) {
    if (x.rank() < 2) return ctx.fail("input must have rank >= 2 (N, C, ...), got ", x.to_string());
    std::vector<Dim> dims = x.dims();
    dims.erase(dims.begin() + 1);
    per_element = Shape(std::move(dims));
    if (t.rank_known()) {
      if (t.rank() != per_element.rank())
        return ctx.fail("target shape ", t.to_string(), " does not match input shape ", x.to_string());
      for (size_t k = 0; k < t.rank(); ++k)
        if (t[k].is_static() && per_element[k].is_static() && t[k].value() != per_element[k].value())
          return ctx.fail("target shape ", t.to_string(), " does not match input shape ", x.to_string());
    }
    if (ctx.has_input(2)) {
      const Shape& w = ctx.input_shape(2);
      if (w.rank_known() && (w.rank() != 1 || (w[0].is_static() && x[1].is_static() && w[0].value() != x[1].value())))
        return ctx.fail("weights must have shape [C] = [", x[1].to_string(), "], got ", w.to_string());
    }
  } else if (t.rank_known()) {
    per_element = t;
  }
  ctx.set_output(0, ctx.input_type(0), reduction == "none" ? per_element : Shape());
  if (ctx.num_outputs() > 1) ctx.set_output(1, ctx.input_type(0), x);
  return Status::ok();
}

OpSchema loss_op(const char* name, int max_outputs) {
  OpSchema s;
  s.name = name;
  s.since_version = 12;
  s.min_inputs = 2;
  s.max_inputs = 3;
  s.min_outputs = 1;
  s.max_outputs = max_outputs;
  s.infer = infer_loss;
  return s;
}

}  // namespace

void register_loss_ops(OpRegistry& r) {
  r.add(loss_op("NegativeLogLikelihoodLoss", 1));
  r.add(loss_op("SoftmaxCrossEntropyLoss", 2));
}

}  // namespace kiln
