// Op schema of BitCast (elementwise family): reinterprets the bytes of a tensor as another type
// of the same width. ONNX defines it at opset 26; kiln's importer reads newer models as opset
// 24 (kMaxOpset), so it is registered from 24.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_bit_cast(InferContext& ctx) {
  if (!ctx.node().has_attr("to")) return ctx.fail("attribute 'to' is required");
  const int64_t to = ctx.node().attr_int("to", 0);
  if (!dtype_code_known(int32_t(to)) || to == 0) return ctx.fail("attribute 'to' is not a known element type: ", to);
  const DataType t = DataType(int32_t(to)), from = ctx.input_type(0);
  if (t == DataType::kString || from == DataType::kString) return ctx.fail("BitCast of strings is not supported");
  if (dtype_size(t) == 0) return ctx.fail("BitCast to ", dtype_name(t), " is not supported");
  if (from != DataType::kUndefined && dtype_size(from) != dtype_size(t))
    return ctx.fail("BitCast needs types of one width: ", dtype_name(from), " to ", dtype_name(t));
  ctx.set_output(0, t, ctx.input_shape(0));
  return Status::ok();
}

}  // namespace

void register_bit_cast_ops(OpRegistry& r) {
  r.add(OpSchema::make("BitCast", 24, 1, 1, infer_bit_cast));
}

}  // namespace kiln
