// convert_precision: runs the float32 part of the graph in float16 (or bfloat16), as TensorRT's
// --fp16 does, keeping the engine's inputs and outputs in their declared types.
//
//   before:  %y:float = Conv(%x:float, %w:float)          (x a graph input, y a graph output)
//   after:   %x/h:float16 = Cast(%x) {to=10}
//            %y/h:float16 = Conv(%x/h, %w/h)              (w/h: the weight converted once)
//            %y:float = Cast(%y/h) {to=1}
//
// Pre: types inferred; ctx.reduced_precision is kFloat16 or kBFloat16 (else the pass does
// nothing). Post: every node that computes on float32 values computes on the reduced type,
// except nodes that must stay float32 (quantization ops, control flow, and any node whose
// schema rejects the reduced type: found by re-running inference, then kept with Casts around
// it), and layers a precision constraint keeps in float32 (ctx.keep_float32); ports that ONNX
// fixes to float32 (Resize's roi and scales) stay float32; the graph
// verifies and infers.
#include <map>
#include <set>

#include "ir/op_registry.h"
#include "passes/pipeline.h"

namespace kiln::passes {

namespace {

constexpr DataType kF32 = DataType::kFloat32;

bool port_stays_f32(const Node& n, size_t port) {
  if (n.op_type == "Resize") return port >= 1;  // roi, scales
  if (n.op_type == "Upsample") return port == 1;
  return false;
}

bool node_stays_f32(const Node& n) {
  static const std::set<std::string> keep = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                                             "QLinearConv", "QLinearMatMul", "NonMaxSuppression", "RoiAlign"};
  return (!n.domain.empty() && n.domain != "kiln") || keep.count(n.op_type) || !n.subgraphs().empty();
}

class Converter {
 public:
  Converter(Graph& g, DataType to, std::set<const Node*> keep) : g_(g), to_(to), keep_(std::move(keep)) {}
  Status run(PassContext& ctx);

 private:
  Expected<Value*> cast(Value* v, DataType dt, std::vector<std::unique_ptr<Node>>& out);
  Expected<Value*> converted_weight(Value* v);
  bool converts(const Node& n) const;

  Graph& g_;
  DataType to_;
  std::set<const Node*> keep_;
  std::map<std::pair<const Value*, DataType>, Value*> casts_;  // (value, type) -> its cast
  int casts_added_ = 0, nodes_converted_ = 0;
};

bool Converter::converts(const Node& n) const {
  if (keep_.count(&n) || node_stays_f32(n)) return false;
  for (const Value* v : n.inputs) if (v && v->dtype == kF32) return true;
  for (const Value* v : n.outputs) if (v && v->dtype == kF32) return true;
  return false;
}

Expected<Value*> Converter::converted_weight(Value* v) {
  auto key = std::make_pair(static_cast<const Value*>(v), to_);
  if (auto it = casts_.find(key); it != casts_.end()) return it->second;
  const Tensor& w = *v->initializer;
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(to_, w.dims()));
  const float* src = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    if (to_ == DataType::kFloat16) t.mutable_data<Half>()[i] = Half(src[i]);
    else t.mutable_data<BFloat16>()[i] = BFloat16(src[i]);
  }
  KILN_ASSIGN_OR_RETURN(Value * c, g_.add_initializer(v->name + "/" + dtype_name(to_), std::move(t)));
  casts_[key] = c;
  return c;
}

Expected<Value*> Converter::cast(Value* v, DataType dt, std::vector<std::unique_ptr<Node>>& out) {
  if (v->initializer && v->dtype == kF32 && dt == to_) return converted_weight(v);
  auto key = std::make_pair(static_cast<const Value*>(v), dt);
  if (auto it = casts_.find(key); it != casts_.end()) return it->second;
  KILN_ASSIGN_OR_RETURN(Value * c, g_.add_value(v->name + "/" + dtype_name(dt), dt, v->shape));
  auto n = std::make_unique<Node>();
  n->name = v->name + "/cast_" + dtype_name(dt);
  n->op_type = "Cast";
  n->opset = default_opset(g_);
  n->inputs = {v};
  n->outputs = {c};
  n->attrs["to"] = static_cast<int64_t>(dt);
  c->producer = n.get();
  out.push_back(std::move(n));
  casts_[key] = c;
  ++casts_added_;
  return c;
}

// Whether the op's schema accepts the node with its float32 inputs in the reduced type, and then
// gives its float32 outputs in the reduced type: a node whose output type comes from an
// attribute (ConstantOfShape's value, a Constant, EyeLike's dtype) keeps float32 and its readers
// get a Cast (Swin's attention mask starts from a float ConstantOfShape).
bool accepts_reduced(const Node& n, DataType to) {
  const OpSchema* schema = OpRegistry::global().find(n.domain, n.op_type);
  if (!schema) return false;
  std::vector<InferContext::Input> ins;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Value* v = n.inputs[i];
    InferContext::Input in;
    if (v) in = {v->dtype == kF32 && !port_stays_f32(n, i) ? to : v->dtype, v->shape, nullptr, true};
    if (v && v->initializer && v->dtype != kF32) in.value = v->initializer;  // shape/axes inputs stay known
    ins.push_back(in);
  }
  Node probe = n;  // a Cast to float32 would become a Cast to the reduced type
  if (n.op_type == "Cast" && n.attr_int("to", 0) == static_cast<int64_t>(kF32)) probe.attrs["to"] = static_cast<int64_t>(to);
  InferContext ctx(probe, std::move(ins), n.outputs.size());
  if (!infer_node(*schema, ctx).is_ok()) return false;
  for (size_t k = 0; k < n.outputs.size(); ++k)
    if (n.outputs[k] && n.outputs[k]->dtype == kF32 && ctx.output(k).dtype != to) return false;
  return true;
}

Status Converter::run(PassContext& ctx) {
  std::set<const Value*> graph_outputs(g_.outputs.begin(), g_.outputs.end());
  for (const auto& np : g_.nodes()) {
    if (!node_stays_f32(*np) && !accepts_reduced(*np, to_)) keep_.insert(np.get());
    if (ctx.keep_float32 && ctx.keep_float32(*np) && keep_.insert(np.get()).second)
      ++ctx.counters["convert_precision.kept_float32_by_constraint"];
  }
  std::set<const Node*> converted;
  for (const auto& np : g_.nodes()) if (converts(*np)) converted.insert(np.get());

  std::vector<std::unique_ptr<Node>> order;
  for (auto& np : g_.mutable_nodes()) {
    Node& n = *np;
    const bool conv = converted.count(&n) != 0;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      Value* v = n.inputs[i];
      if (!v) continue;
      // The type this port wants: the reduced type on a converted node's float ports; float32
      // where a converted producer now hands over the reduced type to a node that stays.
      DataType want = v->dtype;
      if (conv && v->dtype == kF32 && !port_stays_f32(n, i)) want = to_;
      if (v->dtype == to_ && v->producer && converted.count(v->producer) && (!conv || port_stays_f32(n, i)))
        want = kF32;
      if (want != v->dtype) { KILN_ASSIGN_OR_RETURN(n.inputs[i], cast(v, want, order)); }
    }
    if (!conv) { order.push_back(std::move(np)); continue; }
    ++nodes_converted_;
    if (n.op_type == "Cast" && n.attr_int("to", 0) == static_cast<int64_t>(kF32)) n.attrs["to"] = static_cast<int64_t>(to_);
    std::vector<std::pair<Value*, Value*>> restore;  // (reduced copy, graph output) pairs
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value* o = n.outputs[k];
      if (!o || o->dtype != kF32) continue;
      if (!graph_outputs.count(o)) { o->dtype = to_; continue; }
      // A graph output keeps float32: the node writes a reduced copy, a Cast restores it.
      KILN_ASSIGN_OR_RETURN(Value * r, g_.add_value(o->name + "/" + dtype_name(to_), to_, o->shape));
      r->producer = &n;
      n.outputs[k] = r;
      restore.push_back({r, o});
      casts_[{o, to_}] = r;  // converted readers of the output (BERT's pooler) take the reduced copy
    }
    order.push_back(std::move(np));
    for (auto [r, o] : restore) {
      auto c = std::make_unique<Node>();
      c->name = o->name + "/cast_float";
      c->op_type = "Cast";
      c->opset = n.opset;
      c->inputs = {r};
      c->outputs = {o};
      c->attrs["to"] = static_cast<int64_t>(kF32);
      o->producer = c.get();
      order.push_back(std::move(c));
      ++casts_added_;
    }
  }
  g_.mutable_nodes() = std::move(order);
  ctx.counters["convert_precision.nodes"] += nodes_converted_;
  ctx.counters["convert_precision.casts"] += casts_added_;
  return Status::ok();
}

}  // namespace

Status convert_precision(Graph& graph, PassContext& ctx) {
  if (ctx.reduced_precision != DataType::kFloat16 && ctx.reduced_precision != DataType::kBFloat16) return Status::ok();
  Converter c(graph, ctx.reduced_precision, {});
  KILN_RETURN_IF_ERROR(c.run(ctx));
  Status s = infer_graph(graph);
  if (!s) return err("after converting to ", dtype_name(ctx.reduced_precision), ": ", s.message());
  return Status::ok();
}

}  // namespace kiln::passes
