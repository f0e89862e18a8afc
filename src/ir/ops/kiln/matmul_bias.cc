// kiln.MatMulBias: a MatMul with its bias added and an optional activation, as one layer (made
// by passes/fuse_epilogue.cc from the Linear layers of transformers):
//   Y = act(MatMul(A, B) + bias)        or, with a residual Z and no activation,
//   Y = MatMul(A, B) + bias + Z
// Inputs: A [..., M, K] (rank >= 2), B [K, N], bias [N], Z (optional, Y's shape). Attribute
// activation: "" (none), "Relu", or "Gelu" (the exact erf form, x * 0.5 * (1 + erf(x / sqrt(2))));
// a residual only without activation (the GEMM adds it as its C operand). Float types only.
#include "ir/activation.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_matmul_bias(InferContext& ctx) {
  auto act = read_activation(ctx.node(), "activation", ActivationSlot::kMatMulBias);
  if (!act) return ctx.fail(act.status().message());
  const DataType t = ctx.input_type(0);
  if (t != DataType::kFloat32 && t != DataType::kFloat16 && t != DataType::kBFloat16)
    return ctx.fail("kiln.MatMulBias takes float32, float16 or bfloat16, got ", dtype_name(t));
  if (ctx.input_type(1) != t || ctx.input_type(2) != t) return ctx.fail("A, B and bias must have one type");
  if (ctx.has_input(3) && (ctx.input_type(3) != t || *act != Activation::kNone))
    return ctx.fail("a residual input must have A's type and comes without activation");
  const Shape &a = ctx.input_shape(0), &b = ctx.input_shape(1), &bias = ctx.input_shape(2);
  if (a.rank_known() && a.rank() < 2) return ctx.fail("A must have rank >= 2, got ", a.to_string());
  if (b.rank_known() && b.rank() != 2) return ctx.fail("B must be 2-D, got ", b.to_string());
  if (bias.rank_known() && bias.rank() != 1) return ctx.fail("bias must be 1-D, got ", bias.to_string());
  if (b.rank_known() && bias.rank_known() && b[1].is_static() && bias[0].is_static() && b[1].value() != bias[0].value())
    return ctx.fail("bias ", bias.to_string(), " does not match B's columns ", b.to_string());
  const OpSchema* mm = OpRegistry::global().find("", "MatMul");
  KILN_RETURN_IF_ERROR(mm->infer(ctx));  // reads A and B only
  if (ctx.has_input(3)) {
    const Shape& z = ctx.input_shape(3);
    const Shape& y = ctx.output(0).shape;
    if (z.is_static() && y.is_static() && z != y)
      return ctx.fail("residual input has shape ", z.to_string(), " but the product gives ", y.to_string());
  }
  return Status::ok();
}

}  // namespace

void register_kiln_matmul_bias_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("MatMulBias", 1, 3, 4, infer_matmul_bias).kind(FusionKind::kAnchor);
  s.domain = "kiln";
  r.add(std::move(s));
}

}  // namespace kiln
