// Op schemas of ONNX Runtime's quantized elementwise ops (domain com.microsoft), which
// passes/fuse_qdq.cc makes of DequantizeLinear -> Add/Mul -> QuantizeLinear, as ONNX Runtime's
// QDQ transformer does:
//   QLinearAdd / QLinearMul(A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale,
//                           C_zero_point?) -> C
// A, B: int8 or uint8 (the same type), per-tensor scales and zero points; C has A's type and the
// broadcast of A's and B's shapes.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_qlinear_binary(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kInt8, DataType::kUInt8}));
  if (ctx.input_type(3) != ctx.input_type(0))
    return ctx.fail("A and B have different types (", dtype_name(ctx.input_type(0)), ", ",
                    dtype_name(ctx.input_type(3)), ")");
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_shapes({ctx.input_shape(0), ctx.input_shape(3)}));
  ctx.set_output(0, ctx.input_type(0), std::move(s));
  return Status::ok();
}

}  // namespace

void register_qlinear_binary_ops(OpRegistry& r) {
  for (const char* name : {"QLinearAdd", "QLinearMul"}) {
    OpSchema s = OpSchema::make(name, 1, 7, 8, infer_qlinear_binary);
    s.domain = "com.microsoft";
    r.add(std::move(s));
  }
}

}  // namespace kiln
