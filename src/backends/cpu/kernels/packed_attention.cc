// CPU kernel of kiln.PackedAttention: cuts QKV [B, S, 3E] into Q, K, V [B, S, E] and runs the
// reference ONNX Attention kernel (3-D form, q_num_heads = kv_num_heads = num_heads) on them, so
// the fused op computes exactly what the Attention it stands for computes, roundings included.
#include <cstring>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

Status packed_attention(KernelContext& ctx) {
  const Tensor& qkv = ctx.input(0);
  const int64_t heads = ctx.node().attr_int("num_heads", 0);
  if (qkv.rank() != 3 || heads <= 0 || qkv.dim(2) % (3 * heads))
    return ctx.fail("QKV ", qkv.describe(), " is not [B, S, 3 * num_heads * D] with num_heads ", heads);
  const int64_t rows = qkv.dim(0) * qkv.dim(1), e = qkv.dim(2) / 3;
  const size_t elem = dtype_size(qkv.dtype()), row_bytes = size_t(e) * elem;
  std::vector<Tensor> parts;
  for (int64_t p = 0; p < 3; ++p) {
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(qkv.dtype(), {qkv.dim(0), qkv.dim(1), e}));
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(t.mutable_raw() + size_t(r) * row_bytes, qkv.raw() + (size_t(r) * 3 + size_t(p)) * row_bytes, row_bytes);
    parts.push_back(std::move(t));
  }
  Node attention;  // the ONNX Attention this node stands for
  attention.name = ctx.node().name;
  attention.op_type = "Attention";
  attention.opset = 23;
  attention.outputs = {ctx.node().outputs[0]};
  attention.attrs["q_num_heads"] = heads;
  attention.attrs["kv_num_heads"] = heads;
  if (ctx.node().has_attr("scale")) attention.attrs["scale"] = ctx.node().attr_float("scale", 1.0f);
  std::vector<const Tensor*> ins = {&parts[0], &parts[1], &parts[2]};
  if (ctx.has_input(1)) ins.push_back(&ctx.input(1));
  std::vector<Tensor> outs(1);
  outs[0] = ctx.output(0);
  KernelContext actx(attention, ins, outs);
  KILN_RETURN_IF_ERROR(KernelTable::global().find("", "Attention")(actx));
  ctx.set_output(0, std::move(outs[0]));
  return Status::ok();
}

}  // namespace

void register_packed_attention_kernels(KernelTable& t) { t.add("kiln", "PackedAttention", packed_attention); }

}  // namespace kiln::cpu
