#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_matmul_bias_kernels(KernelTable& t);  // kiln.MatMulBias (kernels/matmul_bias.cc)
void register_packed_attention_kernels(KernelTable& t);  // kiln.PackedAttention (kernels/packed_attention.cc)

Expected<Tensor*> KernelContext::allocate_output(size_t i, DataType dtype, std::vector<int64_t> dims) {
  auto t = Tensor::zeros(dtype, std::move(dims));
  if (!t && has_output(i)) return fail("output '", node().outputs[i]->name, "': ", t.status().message());
  if (!t) return fail("output ", i, ": ", t.status().message());
  outputs_[i] = std::move(t).value();
  return &outputs_[i];
}

const KernelTable& KernelTable::global() {
  static const KernelTable table = [] {
    KernelTable t;
    register_elementwise_kernels(t);
    register_activation_kernels(t);
    register_reduce_kernels(t);
    register_matmul_kernels(t);
    register_conv_kernels(t);
    register_pool_kernels(t);
    register_normalization_kernels(t);
    register_shape_kernels(t);
    register_indexing_kernels(t);
    register_resize_kernels(t);
    register_quantize_kernels(t);
    register_rnn_kernels(t);
    register_loss_kernels(t);
    register_detection_kernels(t);
    register_signal_kernels(t);
    register_text_kernels(t);
    register_control_flow_kernels(t);
    register_attention_kernels(t);
    register_flex_attention_kernels(t);
    register_random_kernels(t);
    register_image_kernels(t);
    register_conv_act_kernels(t);
    register_max_pool_nhwc_kernels(t);
    register_qlinear_binary_kernels(t);
    register_qlinear_concat_kernels(t);
    register_matmul_bias_kernels(t);
    register_packed_attention_kernels(t);
    return t;
  }();
  return table;
}

void KernelTable::add(const std::string& domain, const std::string& op, KernelFn fn) {
  kernels_[{domain, op}] = fn;
}

KernelFn KernelTable::find(const std::string& domain, const std::string& op) const {
  auto it = kernels_.find({domain == "ai.onnx" ? "" : domain, op});
  return it == kernels_.end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, std::string>> KernelTable::list() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, fn] : kernels_) out.push_back(k);
  return out;
}

}  // namespace kiln::cpu
