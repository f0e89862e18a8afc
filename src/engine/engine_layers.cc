#include "engine/engine_layers.h"

#include <cstring>

namespace kiln::engine {

namespace {
const char* const kRebuild = "; rebuild the engine from the ONNX model with this version of kiln";

Status subgraph_to_proto(const Graph& g, kilnpb::SubGraph* s) {
  s->set_name(g.name);
  for (const auto& v : g.values()) {
    if (v->is_capture) continue;
    if (v->initializer) {
      s->add_initializer_names(v->name);
      tensor_to_proto(*v->initializer, s->add_initializers());
    } else {
      value_to_proto(*v, s->add_values());
    }
  }
  for (const auto& c : g.captures) s->add_captures(c.outer->name);
  for (const Value* v : g.inputs) s->add_inputs(v->name);
  for (const Value* v : g.outputs) s->add_outputs(v->name);
  for (const auto& n : g.nodes()) KILN_RETURN_IF_ERROR(layer_to_proto(*n, s->add_layers()));
  return Status::ok();
}

Expected<std::shared_ptr<Graph>> subgraph_from_proto(const kilnpb::SubGraph& s, const Graph& outer,
                                                     const std::string& where) {
  auto g = std::make_shared<Graph>();
  g->name = s.name();
  g->opsets = outer.opsets;
  for (const auto& name : s.captures()) {
    Value* o = outer.find_value(name);
    if (!o) return err(where, ": subgraph reads '", name, "', which the enclosing graph lacks", kRebuild);
    KILN_RETURN_IF_ERROR(g->add_capture(o).status());
  }
  if (s.initializer_names_size() != s.initializers_size()) return err(where, ": subgraph weights are inconsistent", kRebuild);
  for (int i = 0; i < s.initializers_size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(s.initializers(i), where));
    KILN_RETURN_IF_ERROR(g->add_initializer(s.initializer_names(i), std::move(t)).status());
  }
  for (const auto& vi : s.values()) {
    if (!dtype_code_known(vi.dtype())) return err(where, ": subgraph value '", vi.name(), "' has an unknown type", kRebuild);
    KILN_RETURN_IF_ERROR(g->add_value(vi.name(), static_cast<DataType>(vi.dtype()), shape_from_proto(vi)).status());
  }
  for (const auto& name : s.inputs()) {
    Value* v = g->find_value(name);
    if (!v) return err(where, ": subgraph input '", name, "' is not declared", kRebuild);
    v->is_graph_input = true;
    g->inputs.push_back(v);
  }
  for (const auto& l : s.layers()) KILN_RETURN_IF_ERROR(layer_from_proto(l, *g).status());
  for (const auto& name : s.outputs()) {
    Value* v = g->find_value(name);
    if (!v) return err(where, ": subgraph output '", name, "' is not declared", kRebuild);
    g->outputs.push_back(v);
  }
  return g;
}

Status attr_to_proto(const std::string& name, const AttrValue& v, kilnpb::Attribute* a) {
  a->set_name(name);
  if (auto* i = std::get_if<int64_t>(&v)) a->set_i(*i);
  else if (auto* f = std::get_if<float>(&v)) a->set_f(*f);
  else if (auto* s = std::get_if<std::string>(&v)) a->set_s(*s);
  else if (auto* t = std::get_if<Tensor>(&v)) tensor_to_proto(*t, a->mutable_t());
  // Lists: mutable_*() first, so that an empty list still sets the oneof (else it loads as
  // "attribute has no value").
  else if (auto* is = std::get_if<std::vector<int64_t>>(&v)) { auto* l = a->mutable_ints(); for (int64_t x : *is) l->add_v(x); }
  else if (auto* fs = std::get_if<std::vector<float>>(&v)) { auto* l = a->mutable_floats(); for (float x : *fs) l->add_v(x); }
  else if (auto* ss = std::get_if<std::vector<std::string>>(&v)) { auto* l = a->mutable_strings(); for (const auto& x : *ss) l->add_v(x); }
  else if (auto* ts = std::get_if<std::vector<Tensor>>(&v)) { auto* l = a->mutable_tensors(); for (const auto& x : *ts) tensor_to_proto(x, l->add_v()); }
  else if (auto* g = std::get_if<std::shared_ptr<Graph>>(&v); g && *g) return subgraph_to_proto(**g, a->mutable_graph());
  else return err("attribute '", name, "' has no value");
  return Status::ok();
}

Expected<AttrValue> attr_from_proto(const kilnpb::Attribute& a, const Graph& g, const std::string& where) {
  using A = kilnpb::Attribute;
  switch (a.value_case()) {
    case A::kI: return AttrValue(static_cast<int64_t>(a.i()));
    case A::kF: return AttrValue(a.f());
    case A::kS: return AttrValue(a.s());
    case A::kT: {
      KILN_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(a.t(), where + " attribute '" + a.name() + "'"));
      return AttrValue(std::move(t));
    }
    case A::kInts: return AttrValue(std::vector<int64_t>(a.ints().v().begin(), a.ints().v().end()));
    case A::kFloats: return AttrValue(std::vector<float>(a.floats().v().begin(), a.floats().v().end()));
    case A::kStrings: return AttrValue(std::vector<std::string>(a.strings().v().begin(), a.strings().v().end()));
    case A::kTensors: {
      std::vector<Tensor> ts;
      for (const auto& t : a.tensors().v()) {
        KILN_ASSIGN_OR_RETURN(Tensor x, tensor_from_proto(t, where + " attribute '" + a.name() + "'"));
        ts.push_back(std::move(x));
      }
      return AttrValue(std::move(ts));
    }
    case A::kGraph: {
      KILN_ASSIGN_OR_RETURN(auto sub, subgraph_from_proto(a.graph(), g, where + " attribute '" + a.name() + "'"));
      return AttrValue(std::move(sub));
    }
    default: return err(where, ": attribute '", a.name(), "' has no value", kRebuild);
  }
}

}  // namespace

void tensor_to_proto(const Tensor& t, kilnpb::TensorData* out) {
  out->set_dtype(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) out->add_dims(d);
  out->set_data(reinterpret_cast<const char*>(t.raw()), t.nbytes());
}

Expected<Tensor> tensor_from_proto(const kilnpb::TensorData& p, const std::string& where) {
  if (!dtype_code_known(p.dtype()) || dtype_bits(static_cast<DataType>(p.dtype())) == 0)
    return err(where, ": unknown element type ", p.dtype(), kRebuild);
  auto t = Tensor::zeros(static_cast<DataType>(p.dtype()), {p.dims().begin(), p.dims().end()});
  if (!t) return err(where, ": ", t.status().message(), kRebuild);
  if (t->nbytes() != p.data().size()) return err(where, ": tensor data has the wrong size", kRebuild);
  if (!p.data().empty()) std::memcpy(t->mutable_raw(), p.data().data(), p.data().size());
  return t;
}

void value_to_proto(const Value& v, kilnpb::ValueInfo* out) {
  out->set_name(v.name);
  out->set_dtype(static_cast<int32_t>(v.dtype));
  out->set_rank_known(v.shape.rank_known());
  for (const Dim& d : v.shape.dims()) {
    auto* pd = out->add_dims();
    if (d.is_static()) pd->set_value(d.value());
    else if (d.is_symbolic() && d.coef() == 1) pd->set_symbol(d.symbol_name());  // k*batch: left unknown
  }
}

Shape shape_from_proto(const kilnpb::ValueInfo& v) {
  if (!v.rank_known()) return Shape::unknown_rank();
  std::vector<Dim> dims;
  for (const auto& d : v.dims()) {
    if (d.kind_case() == kilnpb::Dim::kValue && d.value() >= 0) dims.push_back(Dim(d.value()));
    else if (d.kind_case() == kilnpb::Dim::kSymbol) dims.push_back(Dim::symbol(d.symbol()));
    else dims.push_back(Dim::unknown());
  }
  return Shape(std::move(dims));
}

Status layer_to_proto(const Node& n, kilnpb::Layer* l) {
  l->set_name(n.name);
  l->set_op_type(n.op_type);
  l->set_domain(n.domain);
  l->set_opset(n.opset);
  for (const Value* in : n.inputs) l->add_inputs(in ? in->name : "");
  for (const Value* out : n.outputs) l->add_outputs(out ? out->name : "");
  for (const auto& [k, v] : n.attrs) KILN_RETURN_IF_ERROR(attr_to_proto(k, v, l->add_attrs()).with_context(n.label() + ": "));
  return Status::ok();
}

Expected<Node*> layer_from_proto(const kilnpb::Layer& l, Graph& g) {
  auto n = std::make_unique<Node>();
  n->name = l.name();
  n->op_type = l.op_type();
  n->domain = l.domain();
  n->opset = l.opset();
  std::string where = "engine layer '" + l.name() + "'";
  for (const auto& in : l.inputs()) {
    if (in.empty()) { n->inputs.push_back(nullptr); continue; }
    Value* v = g.find_value(in);
    if (!v) return err(where, " reads unknown value '", in, "'", kRebuild);
    n->inputs.push_back(v);
  }
  for (const auto& out : l.outputs()) {
    if (out.empty()) { n->outputs.push_back(nullptr); continue; }
    Value* v = g.find_value(out);
    if (!v || v->producer || v->initializer || v->is_graph_input || v->is_capture)
      return err(where, " writes an unknown or already written value '", out, "'", kRebuild);
    n->outputs.push_back(v);
  }
  for (const auto& a : l.attrs()) {
    KILN_ASSIGN_OR_RETURN(AttrValue v, attr_from_proto(a, g, where));
    n->attrs[a.name()] = std::move(v);
  }
  return g.add_node(std::move(n));
}

}  // namespace kiln::engine
