// The CPU backend's kernel table: which function runs (domain, op). One line per entry, in
// each family's register_<family>_kernels(); kernel_table.cc calls them all.
//
// Before a kernel runs, the executor has run the op's shape inference on the concrete inputs
// and allocated every output whose shape came out static; output(i) returns it. Kernels with
// data-dependent output shapes (NonZero, Unique, ...) call allocate_output() themselves, and
// view-like kernels (Reshape, Identity) hand back an input's buffer with set_output().
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::cpu {

// The GEMM a matmul- or conv-family kernel runs (kernels/gemm.h), from the layer's tactic.
enum class GemmEngine { kBlas, kLoops };

class KernelContext {
 public:
  KernelContext(const Node& node, std::vector<const Tensor*> inputs, std::vector<Tensor>& outputs,
                std::vector<const Tensor*> implicit_inputs = {})
      : node_(node), inputs_(std::move(inputs)), outputs_(outputs), implicit_(std::move(implicit_inputs)) {}

  const Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Tensor& input(size_t i) const { return *inputs_[i]; }
  // Nodes with subgraphs: the tensor of node().implicit_inputs()[i] (an enclosing-scope value
  // a subgraph reads), or null when the caller bound none.
  const Tensor* implicit_input(size_t i) const { return i < implicit_.size() ? implicit_[i] : nullptr; }
  size_t num_outputs() const { return outputs_.size(); }
  bool has_output(size_t i) const { return node_.has_output(i); }
  // The preallocated output i (zero-filled). Undefined if its shape was data-dependent.
  Tensor& output(size_t i) { return outputs_[i]; }
  Expected<Tensor*> allocate_output(size_t i, DataType dtype, std::vector<int64_t> dims);
  void set_output(size_t i, Tensor t) { outputs_[i] = std::move(t); }
  template <class... Args>
  Status fail(const Args&... args) const { return err(node_.label(), ": ", args...); }
  GemmEngine gemm_engine() const { return gemm_; }
  void set_gemm_engine(GemmEngine e) { gemm_ = e; }

 private:
  const Node& node_;
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor>& outputs_;
  std::vector<const Tensor*> implicit_;
  GemmEngine gemm_ = GemmEngine::kBlas;
};

using KernelFn = Status (*)(KernelContext&);

class KernelTable {
 public:
  static const KernelTable& global();
  void add(const std::string& domain, const std::string& op, KernelFn fn);
  KernelFn find(const std::string& domain, const std::string& op) const;
  std::vector<std::pair<std::string, std::string>> list() const;

 private:
  std::map<std::pair<std::string, std::string>, KernelFn> kernels_;
};

// One function per kernel family, each in src/backends/cpu/kernels/<family>.cc.
void register_elementwise_kernels(KernelTable& t);
void register_activation_kernels(KernelTable& t);
void register_reduce_kernels(KernelTable& t);
void register_matmul_kernels(KernelTable& t);
void register_conv_kernels(KernelTable& t);
void register_pool_kernels(KernelTable& t);
void register_normalization_kernels(KernelTable& t);
void register_shape_kernels(KernelTable& t);
void register_indexing_kernels(KernelTable& t);
void register_resize_kernels(KernelTable& t);
void register_quantize_kernels(KernelTable& t);
void register_rnn_kernels(KernelTable& t);
void register_loss_kernels(KernelTable& t);
void register_detection_kernels(KernelTable& t);
void register_signal_kernels(KernelTable& t);
void register_text_kernels(KernelTable& t);
void register_control_flow_kernels(KernelTable& t);
void register_attention_kernels(KernelTable& t);
void register_flex_attention_kernels(KernelTable& t);
void register_random_kernels(KernelTable& t);
void register_image_kernels(KernelTable& t);
void register_conv_act_kernels(KernelTable& t);  // kiln.ConvAct
void register_max_pool_nhwc_kernels(KernelTable& t);  // kiln.MaxPool {layout="NHWC"}
void register_qlinear_binary_kernels(KernelTable& t);  // com.microsoft QLinearAdd/QLinearMul
void register_qlinear_concat_kernels(KernelTable& t);  // com.microsoft QLinearConcat

}  // namespace kiln::cpu
