// The op registry: one OpSchema per operator holds its opset range, input/output arity,
// type and shape inference and validity check, in one place (src/ir/ops/<family>.cc).
//
// Shape inference runs twice with the same function: at import time on symbolic shapes (with
// the values of constant inputs when known), and at run time on concrete tensors, where every
// input value is known and so every output shape is static except for data-dependent ops.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

// How a fusion pass may treat the op. kPointwise: elementwise on one input (others, if any, are
// scalars or types), kBroadcast: elementwise over numpy-broadcast inputs; both are independent of
// the layout of same-shaped operands (convert_layout follows them channels-last).
enum class FusionKind { kOpaque, kPointwise, kBroadcast, kInjective, kReduce, kAnchor };

class InferContext {
 public:
  struct Input {
    DataType dtype = DataType::kUndefined;
    Shape shape = Shape::unknown_rank();
    const Tensor* value = nullptr;  // known constant or run-time value, else null
    bool present = false;
    const std::vector<Dim>* dims_value = nullptr;  // Value::dims_value, else null
  };
  struct Output {
    DataType dtype = DataType::kUndefined;
    Shape shape = Shape::unknown_rank();
    std::optional<std::vector<Dim>> dims_value;
  };

  InferContext(const Node& node, std::vector<Input> inputs, size_t num_outputs)
      : node_(node), inputs_(std::move(inputs)), outputs_(num_outputs) {}

  const Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i].present; }
  // Absent inputs read as undefined type and unknown rank (never out of bounds).
  DataType input_type(size_t i) const { return has_input(i) ? inputs_[i].dtype : DataType::kUndefined; }
  const Shape& input_shape(size_t i) const { return has_input(i) ? inputs_[i].shape : absent_shape(); }
  // The input's value if known (initializer, Constant, or at run time); null otherwise.
  const Tensor* input_value(size_t i) const { return has_input(i) ? inputs_[i].value : nullptr; }
  void set_output(size_t i, DataType dtype, Shape shape) {
    if (i < outputs_.size()) outputs_[i] = Output{dtype, std::move(shape), std::move(outputs_[i].dims_value)};
  }
  // The elements of a 1-D or scalar integer input, as far as they are known, as Dims: its value
  // (numbers, any sign) or what inference knows of a shape tensor (Shape of a [batch, 16, 128]
  // value is {batch, 16, 128}); nullopt when neither is known or it has over kMaxDimsValue elements.
  std::optional<std::vector<Dim>> input_dims_value(size_t i) const;
  // Records output i's elements as Dims (dropped when every one is unknown or there are too many).
  void set_output_dims_value(size_t i, std::vector<Dim> v);
  static constexpr size_t kMaxDimsValue = 64;
  const Output& output(size_t i) const { return outputs_[i]; }
  // An error that names the node: ctx.fail("axis ", a, " out of range").
  template <class... Args>
  Status fail(const Args&... args) const { return err(node_.label(), ": ", args...); }

 private:
  static const Shape& absent_shape() {
    static const Shape s = Shape::unknown_rank();
    return s;
  }
  const Node& node_;
  std::vector<Input> inputs_;
  std::vector<Output> outputs_;
};

using InferFn = std::function<Status(InferContext&)>;

struct OpSchema {
  std::string domain;           // "" for ai.onnx
  std::string name;
  int since_version = 1;        // oldest opset of `domain` whose form kiln implements
  int last_version = 1 << 30;   // newest opset kiln implements (older forms differ by opset)
  int min_inputs = 0, max_inputs = 0;    // max -1 = variadic
  int min_outputs = 1, max_outputs = 1;
  FusionKind fusion_kind = FusionKind::kOpaque;
  InferFn infer;  // types and shapes of the outputs; also validates attributes

  // The common case in one expression: OpSchema::make("Gather", 13, 2, 2, infer_gather)
  //   .outputs(1, 2).kind(FusionKind::kInjective)
  static OpSchema make(std::string name, int since, int min_in, int max_in, InferFn infer) {
    OpSchema s;
    s.name = std::move(name);
    s.since_version = since;
    s.min_inputs = min_in;
    s.max_inputs = max_in;
    s.infer = std::move(infer);
    return s;
  }
  OpSchema&& outputs(int min, int max) && { min_outputs = min; max_outputs = max; return std::move(*this); }
  OpSchema&& kind(FusionKind k) && { fusion_kind = k; return std::move(*this); }
};

class OpRegistry {
 public:
  // The registry with every op kiln knows (built once, on first use).
  static const OpRegistry& global();
  void add(OpSchema schema);
  // The schema for (domain, op) or null.
  const OpSchema* find(const std::string& domain, const std::string& op) const;
  std::vector<const OpSchema*> all() const;

 private:
  std::map<std::pair<std::string, std::string>, OpSchema> schemas_;
};

// The elements of a small (<= InferContext::kMaxDimsValue) 1-D or scalar integer tensor as Dims:
// its value when known (numbers, any sign), else what inference knows of it (`inferred`,
// Value::dims_value); nullopt when neither.
std::optional<std::vector<Dim>> dims_value_of(const Tensor* value, const std::vector<Dim>* inferred);
inline std::optional<std::vector<Dim>> dims_value_of(const Value* v) {
  if (!v) return std::nullopt;
  return dims_value_of(v->initializer, v->dims_value ? &*v->dims_value : nullptr);
}

// Checks arity, then runs the schema's inference. `inputs` describe node.inputs.
Status infer_node(const OpSchema& schema, InferContext& ctx);

// Import-time inference over the whole graph: fills every Value's dtype and shape.
Status infer_graph(Graph& graph);

// One function per op family, each in src/ir/ops/<family>.cc.
void register_elementwise_ops(OpRegistry& r);
void register_activation_ops(OpRegistry& r);
void register_reduce_ops(OpRegistry& r);
void register_matmul_ops(OpRegistry& r);
void register_conv_ops(OpRegistry& r);
void register_pool_ops(OpRegistry& r);
void register_normalization_ops(OpRegistry& r);
void register_shape_ops(OpRegistry& r);
void register_indexing_ops(OpRegistry& r);
void register_resize_ops(OpRegistry& r);
void register_quantize_ops(OpRegistry& r);
void register_rnn_ops(OpRegistry& r);
void register_loss_ops(OpRegistry& r);
void register_detection_ops(OpRegistry& r);
void register_signal_ops(OpRegistry& r);
void register_text_ops(OpRegistry& r);
void register_control_flow_ops(OpRegistry& r);
void register_attention_ops(OpRegistry& r);
void register_flex_attention_ops(OpRegistry& r);  // ai.onnx.preview FlexAttention
void register_random_ops(OpRegistry& r);
void register_image_ops(OpRegistry& r);
// src/ir/ops/kiln/: kiln-domain fused ops
void register_kiln_conv_act_ops(OpRegistry& r);
void register_kiln_max_pool_ops(OpRegistry& r);  // kiln.MaxPool {layout="NHWC"}
void register_qlinear_binary_ops(OpRegistry& r);  // com.microsoft QLinearAdd/QLinearMul
void register_qlinear_concat_ops(OpRegistry& r);  // com.microsoft QLinearConcat

}  // namespace kiln
