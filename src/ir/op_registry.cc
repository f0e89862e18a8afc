#include "ir/op_registry.h"

namespace kiln {

void register_kiln_matmul_bias_ops(OpRegistry& r);  // src/ir/ops/kiln/matmul_bias.cc
void register_kiln_packed_attention_ops(OpRegistry& r);  // src/ir/ops/kiln/packed_attention.cc

const OpRegistry& OpRegistry::global() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_elementwise_ops(r);
    register_activation_ops(r);
    register_reduce_ops(r);
    register_matmul_ops(r);
    register_conv_ops(r);
    register_pool_ops(r);
    register_normalization_ops(r);
    register_shape_ops(r);
    register_indexing_ops(r);
    register_resize_ops(r);
    register_quantize_ops(r);
    register_rnn_ops(r);
    register_loss_ops(r);
    register_detection_ops(r);
    register_signal_ops(r);
    register_text_ops(r);
    register_control_flow_ops(r);
    register_attention_ops(r);
    register_flex_attention_ops(r);
    register_random_ops(r);
    register_image_ops(r);
    register_kiln_conv_act_ops(r);
    register_kiln_max_pool_ops(r);
    register_qlinear_binary_ops(r);
    register_qlinear_concat_ops(r);
    register_kiln_matmul_bias_ops(r);
    register_kiln_packed_attention_ops(r);
    return r;
  }();
  return registry;
}

void OpRegistry::add(OpSchema schema) {
  auto key = std::make_pair(schema.domain, schema.name);
  schemas_[key] = std::move(schema);
}

const OpSchema* OpRegistry::find(const std::string& domain, const std::string& op) const {
  std::string d = domain == "ai.onnx" ? "" : domain;
  auto it = schemas_.find({d, op});
  return it == schemas_.end() ? nullptr : &it->second;
}

std::vector<const OpSchema*> OpRegistry::all() const {
  std::vector<const OpSchema*> out;
  for (const auto& [k, s] : schemas_) out.push_back(&s);
  return out;
}

std::optional<std::vector<Dim>> dims_value_of(const Tensor* value, const std::vector<Dim>* inferred) {
  if (value) {
    if (value->dims().size() > 1 || size_t(value->numel()) > InferContext::kMaxDimsValue) return std::nullopt;
    auto ints = value->to_int64_vector();  // integer types only
    if (!ints) return std::nullopt;
    std::vector<Dim> out;
    for (int64_t x : *ints) out.push_back(Dim::integer(x));
    return out;
  }
  if (inferred) return *inferred;
  return std::nullopt;
}

std::optional<std::vector<Dim>> InferContext::input_dims_value(size_t i) const {
  if (!has_input(i)) return std::nullopt;
  return dims_value_of(inputs_[i].value, inputs_[i].dims_value);
}

void InferContext::set_output_dims_value(size_t i, std::vector<Dim> v) {
  if (i >= outputs_.size() || v.size() > kMaxDimsValue) return;
  bool any = false;
  for (const Dim& d : v) any |= d.is_known();
  if (any) outputs_[i].dims_value = std::move(v);
}

Status infer_node(const OpSchema& schema, InferContext& ctx) {
  const Node& n = ctx.node();
  int ni = static_cast<int>(n.inputs.size()), no = static_cast<int>(n.outputs.size());
  if (ni < schema.min_inputs || (schema.max_inputs >= 0 && ni > schema.max_inputs))
    return ctx.fail("has ", ni, " inputs; ", n.op_type, " takes ", schema.min_inputs,
                    schema.max_inputs < 0 ? " or more" : " to " + std::to_string(schema.max_inputs));
  for (int i = 0; i < schema.min_inputs; ++i)
    if (!ctx.has_input(i)) return ctx.fail("required input ", i, " is missing");
  if (no < schema.min_outputs || (schema.max_outputs >= 0 && no > schema.max_outputs))
    return ctx.fail("has ", no, " outputs; ", n.op_type, " produces ", schema.min_outputs,
                    schema.max_outputs < 0 ? " or more" : " to " + std::to_string(schema.max_outputs));
  if (!schema.infer) return ctx.fail("has no shape inference");
  return schema.infer(ctx);
}

// Subgraphs are inferred just before the node that holds them: their captures take the types
// the enclosing graph has inferred so far, their inputs keep the types the model declares (or
// stay unknown), and the node's own inference then reads the subgraph outputs' types.
static Status infer_subgraphs(Node& n) {
  for (auto& [key, a] : n.attrs) {
    auto* g = std::get_if<std::shared_ptr<Graph>>(&a);
    if (!g || !*g) continue;
    for (auto& c : (*g)->captures) {
      c.inner->dtype = c.outer->dtype;
      c.inner->shape = c.outer->shape;
    }
    KILN_RETURN_IF_ERROR(infer_graph(**g).with_context(n.label() + ": subgraph '" + key + "': "));
  }
  return Status::ok();
}

Status infer_graph(Graph& graph) {
  const OpRegistry& reg = OpRegistry::global();
  for (const auto& np : graph.nodes()) {
    Node& n = *np;
    const OpSchema* schema = reg.find(n.domain, n.op_type);
    if (!schema) return err(n.label(), ": unsupported operator");
    KILN_RETURN_IF_ERROR(infer_subgraphs(n));
    std::vector<InferContext::Input> ins;
    for (Value* v : n.inputs) {
      InferContext::Input in;
      if (v) in = {v->dtype, v->shape, v->initializer, true, v->dims_value ? &*v->dims_value : nullptr};
      ins.push_back(std::move(in));
    }
    InferContext ctx(n, std::move(ins), n.outputs.size());
    KILN_RETURN_IF_ERROR(infer_node(*schema, ctx));
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      Value* out = n.outputs[i];
      if (!out) continue;
      const auto& o = ctx.output(i);
      // Keep a declared type from the model when inference could not tell.
      if (o.dtype != DataType::kUndefined) out->dtype = o.dtype;
      if (o.shape.rank_known() || !out->shape.rank_known()) out->shape = o.shape;
      out->dims_value = o.dims_value;
    }
  }
  return Status::ok();
}

}  // namespace kiln
