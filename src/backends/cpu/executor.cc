#include "backends/cpu/executor.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "backends/cpu/kernel_table.h"
#include "ir/op_registry.h"

namespace kiln::cpu {

namespace {
void list_unsupported(const Graph& graph, std::set<std::pair<std::string, std::string>>& seen,
                      std::vector<std::string>& out) {
  for (const auto& n : graph.nodes()) {
    const bool schema = OpRegistry::global().find(n->domain, n->op_type) != nullptr;
    const bool kernel = KernelTable::global().find(n->domain, n->op_type) != nullptr;
    if (!(schema && kernel) && seen.insert({n->domain, n->op_type}).second)
      out.push_back(n->op_type + " (domain '" + (n->domain.empty() ? "ai.onnx" : n->domain) +
                    "', opset " + std::to_string(n->opset) + ") first at node '" + n->name + "'" +
                    (schema ? ": no CPU kernel" : ""));
    for (const Graph* sub : n->subgraphs()) list_unsupported(*sub, seen, out);
  }
}
}  // namespace

std::vector<std::string> unsupported_ops(const Graph& graph) {
  std::vector<std::string> out;
  std::set<std::pair<std::string, std::string>> seen;
  list_unsupported(graph, seen, out);
  return out;
}

Expected<std::unique_ptr<Executor>> Executor::create(const Graph& graph, std::vector<GemmEngine> gemm) {
  auto missing = unsupported_ops(graph);
  if (!missing.empty()) {
    std::string msg = "unsupported operators:";
    for (const auto& m : missing) msg += "\n  " + m;
    return Status::error(msg);
  }
  std::unique_ptr<Executor> ex(new Executor(graph));
  const auto& nodes = graph.nodes();
  ex->gemm_ = std::move(gemm);
  ex->gemm_.resize(nodes.size(), GemmEngine::kBlas);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const Value* v : nodes[i]->inputs)
      if (v) ex->last_reader_[v] = i;
    for (const Value* v : nodes[i]->implicit_inputs()) ex->last_reader_[v] = i;
  }
  for (const Value* v : graph.outputs) ex->last_reader_[v] = SIZE_MAX;  // graph outputs live on
  return ex;
}

namespace {
Status check_input(const Value& decl, const Tensor& t) {
  if (decl.dtype != DataType::kUndefined && decl.dtype != t.dtype())
    return err("input '", decl.name, "' expects ", dtype_name(decl.dtype), ", got ", t.describe());
  if (!decl.shape.rank_known()) return Status::ok();
  if (decl.shape.rank() != t.rank())
    return err("input '", decl.name, "' expects shape ", decl.shape.to_string(), ", got ", t.describe());
  for (size_t k = 0; k < t.rank(); ++k)
    if (decl.shape[k].is_static() && decl.shape[k].value() != t.dim(k))
      return err("input '", decl.name, "' expects shape ", decl.shape.to_string(), ", got ", t.describe());
  return Status::ok();
}
// Packed sub-byte tensors (int4, uint4, float4e2m1, int2, uint2) have no whole-byte element,
// so kernels that move elements byte-wise (Transpose, Gather, Slice, Concat, ...) cannot carry
// them. Only these ops read or write them: the casts, the quantize pair, and the views whose
// bytes stay as they are.
bool carries_packed_types(const Node& n) {
  static const char* const kOps[] = {"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear",
                                     "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
                                     "Shape", "Size", "Constant"};
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  for (const char* op : kOps) if (n.op_type == op) return true;
  return false;
}

Status check_packed_types(const Node& n, const std::vector<const Tensor*>& args, const InferContext& ictx,
                          size_t num_outputs) {
  if (carries_packed_types(n)) return Status::ok();
  for (const Tensor* t : args)
    if (t && dtype_is_packed(t->dtype()))
      return err(n.label(), ": packed element type ", dtype_name(t->dtype()), " is not supported by ", n.op_type);
  for (size_t i = 0; i < num_outputs; ++i)
    if (dtype_is_packed(ictx.output(i).dtype))
      return err(n.label(), ": packed element type ", dtype_name(ictx.output(i).dtype), " is not supported by ", n.op_type);
  return Status::ok();
}
}  // namespace

Expected<std::vector<Tensor>> run_node(const Node& n, const std::vector<const Tensor*>& args) {
  return run_node_in_scope(n, args, {});
}

Expected<std::vector<Tensor>> run_node_in_scope(const Node& n, const std::vector<const Tensor*>& args,
                                                const std::vector<const Tensor*>& implicit_args, GemmEngine gemm) {
  std::vector<InferContext::Input> infos;
  for (const Tensor* t : args)
    infos.push_back(t ? InferContext::Input{t->dtype(), t->shape(), t, true} : InferContext::Input{});
  const OpSchema* schema = OpRegistry::global().find(n.domain, n.op_type);
  KernelFn kernel = KernelTable::global().find(n.domain, n.op_type);
  if (!schema || !kernel) return err(n.label(), ": no CPU kernel");
  // Kernels may write every output the op has, so omitted optional outputs get buffers too.
  size_t num_outputs = std::max<size_t>(n.outputs.size(), schema->max_outputs > 0 ? schema->max_outputs : 0);
  InferContext ictx(n, std::move(infos), num_outputs);
  KILN_RETURN_IF_ERROR(infer_node(*schema, ictx));
  KILN_RETURN_IF_ERROR(check_packed_types(n, args, ictx, num_outputs));

  std::vector<Tensor> outs(num_outputs);
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto& o = ictx.output(i);
    if (!o.shape.is_static() || dtype_bits(o.dtype) == 0) continue;
    auto t = Tensor::zeros(o.dtype, o.shape.static_dims());
    if (!t && n.has_output(i)) return err(n.label(), ": output '", n.outputs[i]->name, "': ", t.status().message());
    if (!t) return err(n.label(), ": output ", i, ": ", t.status().message());
    outs[i] = std::move(t).value();
  }
  KernelContext kctx(n, args, outs, implicit_args);
  kctx.set_gemm_engine(gemm);
  KILN_RETURN_IF_ERROR(kernel(kctx));
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!n.has_output(i)) continue;
    if (!outs[i].defined()) return err(n.label(), ": kernel produced no output ", i);
    const auto& o = ictx.output(i);
    if (o.dtype != DataType::kUndefined && o.dtype != outs[i].dtype())
      return err(n.label(), ": kernel produced ", outs[i].describe(), " for output ", i,
                 " but inference said ", dtype_name(o.dtype));
  }
  return outs;
}

Expected<std::vector<Tensor>> Executor::run_subgraph(const std::vector<Tensor>& inputs,
                                                     const std::vector<const Tensor*>& captures) const {
  if (inputs.size() != graph_.inputs.size())
    return err("subgraph '", graph_.name, "' takes ", graph_.inputs.size(), " inputs, got ", inputs.size());
  if (captures.size() != graph_.captures.size())
    return err("subgraph '", graph_.name, "' reads ", graph_.captures.size(), " outer values, got ", captures.size());
  std::map<const Value*, Tensor> env;
  for (size_t i = 0; i < inputs.size(); ++i) {
    KILN_RETURN_IF_ERROR(check_input(*graph_.inputs[i], inputs[i]).with_context("subgraph '" + graph_.name + "': "));
    env[graph_.inputs[i]] = inputs[i];
  }
  for (size_t i = 0; i < captures.size(); ++i) {
    const Value* inner = graph_.captures[i].inner;
    if (inner->initializer) continue;  // read in place
    if (!captures[i]) return err("subgraph '", graph_.name, "': no tensor for outer value '", inner->name, "'");
    env[inner] = *captures[i];
  }
  return execute(std::move(env), nullptr);
}

Expected<std::vector<Tensor>> Executor::run(const std::map<std::string, Tensor>& inputs,
                                            const NodeObserver& observer,
                                            const ValueObserver& value_observer) const {
  std::map<const Value*, Tensor> env;
  for (const Value* in : graph_.inputs) {
    auto it = inputs.find(in->name);
    if (it == inputs.end()) return err("no tensor given for graph input '", in->name, "'");
    KILN_RETURN_IF_ERROR(check_input(*in, it->second));
    env[in] = it->second;
  }
  for (const auto& [name, t] : inputs)
    if (!graph_.find_value(name) || !graph_.find_value(name)->is_graph_input)
      return err("'", name, "' is not an input of the graph");
  if (value_observer)
    for (const Value* in : graph_.inputs) value_observer(*in, env[in]);
  return execute(std::move(env), observer, value_observer);
}

Expected<std::vector<Tensor>> Executor::execute(std::map<const Value*, Tensor> env,
                                                const NodeObserver& observer,
                                                const ValueObserver& value_observer) const {
  auto lookup = [&](const Node& n, const Value* v) -> Expected<const Tensor*> {
    if (v->initializer) return v->initializer;
    if (auto it = env.find(v); it != env.end()) return &it->second;
    return err(n.label(), ": input '", v->name, "' has no value");
  };
  const auto& nodes = graph_.nodes();
  for (size_t ni = 0; ni < nodes.size(); ++ni) {
    const Node& n = *nodes[ni];
    std::vector<const Tensor*> args, implicit_args;
    for (const Value* v : n.inputs) {
      const Tensor* t = nullptr;
      if (v) { KILN_ASSIGN_OR_RETURN(t, lookup(n, v)); }
      args.push_back(t);
    }
    const std::vector<Value*> implicit = n.implicit_inputs();
    for (const Value* v : implicit) {
      KILN_ASSIGN_OR_RETURN(const Tensor* t, lookup(n, v));
      implicit_args.push_back(t);
    }
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_node_in_scope(n, args, implicit_args, gemm_[ni]));
    if (observer) observer(n, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!n.has_output(i)) continue;
      if (value_observer) value_observer(*n.outputs[i], outs[i]);
      env[n.outputs[i]] = std::move(outs[i]);
    }
    auto release = [&](const Value* v) {  // release what no later node reads
      auto it = last_reader_.find(v);
      if (v && it != last_reader_.end() && it->second == ni) env.erase(v);
    };
    for (const Value* v : n.inputs) release(v);
    for (const Value* v : implicit) release(v);
  }
  std::vector<Tensor> results;
  for (const Value* out : graph_.outputs) {
    if (out->initializer) { results.push_back(*out->initializer); continue; }
    auto it = env.find(out);
    if (it == env.end()) return err("graph output '", out->name, "' was not computed");
    results.push_back(it->second);
  }
  return results;
}

}  // namespace kiln::cpu
