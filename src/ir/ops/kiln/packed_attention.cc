// kiln.PackedAttention: multi-head self-attention on one packed QKV projection (made by
// passes/fuse_mha.cc from torchvision's nn.MultiheadAttention and from BERT's three projections):
//   inputs:  QKV [B, S, 3*H*D]: Q, K and V side by side on the last axis, in that order; within
//            each, head-major (element h*D + d);  mask (optional): additive, QKV's type,
//            broadcastable to [B, H, S, S] (as ONNX Attention's attn_mask)
//   attrs:   num_heads = H (required), scale (default 1/sqrt(D))
//   output:  Y [B, S, H*D], heads merged head-major
// = ONNX Attention (3-D form, q_num_heads = kv_num_heads = H) on the three slices of QKV. The
// CUDA kernel reads Q, K and V strided straight out of QKV, so this contract is fixed.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_packed_attention(InferContext& ctx) {
  const int64_t heads = ctx.node().attr_int("num_heads", 0);
  if (heads <= 0) return ctx.fail("kiln.PackedAttention needs a positive num_heads");
  const DataType t = ctx.input_type(0);
  if (t != DataType::kFloat32 && t != DataType::kFloat16 && t != DataType::kBFloat16)
    return ctx.fail("kiln.PackedAttention takes float32, float16 or bfloat16, got ", dtype_name(t));
  if (ctx.has_input(1) && ctx.input_type(1) != t) return ctx.fail("the mask must have QKV's type");
  const Shape& qkv = ctx.input_shape(0);
  if (!qkv.rank_known()) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return Status::ok();
  }
  if (qkv.rank() != 3) return ctx.fail("QKV must be 3-D [B, S, 3*H*D], got ", qkv.to_string());
  Dim e = Dim::unknown();
  if (qkv[2].is_static()) {
    if (qkv[2].value() % (3 * heads)) return ctx.fail("QKV's last dim ", qkv[2].value(), " is not 3 * ", heads, " * D");
    e = Dim(qkv[2].value() / 3);
  }
  const Shape& m = ctx.input_shape(1);
  if (ctx.has_input(1) && m.rank_known() && (m.rank() < 1 || m.rank() > 4))
    return ctx.fail("the mask must have rank 1 to 4, got ", m.to_string());
  ctx.set_output(0, t, Shape({qkv[0], qkv[1], e}));
  return Status::ok();
}

}  // namespace

void register_kiln_packed_attention_ops(OpRegistry& r) {
  OpSchema s = OpSchema::make("PackedAttention", 1, 1, 2, infer_packed_attention).kind(FusionKind::kAnchor);
  s.domain = "kiln";
  r.add(std::move(s));
}

}  // namespace kiln
