#include "onnx/importer.h"

#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <functional>
#include <set>

#include "core/log.h"
#include "ir/op_registry.h"
#include "onnx/tensor_decode.h"

namespace kiln::onnx_import {

namespace {

std::string domain_of(const std::string& d) { return d == "ai.onnx" ? "" : d; }

// `optional_type`: subgraph inputs may leave their type to inference (ONNX allows it there).
Expected<DataType> value_type(const onnx::ValueInfoProto& vi, bool optional_type = false) {
  if (optional_type && !vi.has_type()) return DataType::kUndefined;
  if (!vi.type().has_tensor_type())
    return err("value '", vi.name(), "' is not a tensor (sequence, map and optional types are not supported)");
  int32_t code = vi.type().tensor_type().elem_type();
  if (!dtype_code_known(code)) return err("value '", vi.name(), "' has unknown element type ", code);
  DataType t = static_cast<DataType>(code);
  if (t == DataType::kString) return err("value '", vi.name(), "' is a string tensor; string tensors are not supported");
  return t;
}

Shape value_shape(const onnx::ValueInfoProto& vi) {
  const auto& tt = vi.type().tensor_type();
  if (!tt.has_shape()) return Shape::unknown_rank();
  std::vector<Dim> dims;
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) dims.push_back(Dim(d.dim_value()));
    else if (d.has_dim_param() && !d.dim_param().empty()) dims.push_back(Dim::symbol(d.dim_param()));
    else dims.push_back(Dim::unknown());
  }
  return Shape(std::move(dims));
}

class Importer {
 public:
  Importer(const ImportOptions& opts, std::string base_dir) : opts_(opts), external_(std::move(base_dir)) {}
  Expected<std::unique_ptr<Graph>> run(const onnx::ModelProto& model);

 private:
  Status read_opsets(const onnx::ModelProto& model, Graph& g);
  Status read_graph(const onnx::GraphProto& gp, Graph& g);
  Expected<std::shared_ptr<Graph>> read_subgraph(const onnx::GraphProto& gp, const std::string& where);
  Status read_node(const onnx::NodeProto& np, Graph& g, size_t index);
  Expected<AttrValue> read_attr(const onnx::AttributeProto& a, const std::string& where);
  Status constant_to_initializer(const onnx::NodeProto& np, Graph& g);
  Value* resolve(const std::string& name) { return resolve_in(name, scopes_.size() - 1); }
  Value* resolve_in(const std::string& name, size_t depth);
  bool defined_outside(const std::string& name) const;

  ImportOptions opts_;
  ExternalData external_;
  // The graphs being read, outermost first; the back is the one being read now. A subgraph
  // looks up a name it does not define in the enclosing graphs, innermost first.
  std::vector<Graph*> scopes_;
};

// The value `name` as seen from scopes_[depth]: its own, or an enclosing graph's one, which is
// then captured level by level so that each graph's captures point one level out.
Value* Importer::resolve_in(const std::string& name, size_t depth) {
  Graph* g = scopes_[depth];
  if (Value* v = g->find_value(name)) return v;
  if (depth == 0) return nullptr;
  Value* outer = resolve_in(name, depth - 1);
  if (!outer) return nullptr;
  auto v = g->add_capture(outer);
  return v ? *v : nullptr;
}

bool Importer::defined_outside(const std::string& name) const {
  for (size_t d = 0; d + 1 < scopes_.size(); ++d)
    if (scopes_[d]->find_value(name)) return true;
  return false;
}

// A GRAPH attribute: read in a new scope nested in the graph being read. It inherits the
// model's opsets; names it reads from enclosing graphs become captures.
Expected<std::shared_ptr<Graph>> Importer::read_subgraph(const onnx::GraphProto& gp, const std::string& where) {
  auto sub = std::make_shared<Graph>();
  sub->opsets = scopes_.back()->opsets;
  scopes_.push_back(sub.get());
  Status s = read_graph(gp, *sub);
  scopes_.pop_back();
  if (!s) return s.with_context(where + ": ");
  return sub;
}

Status Importer::read_opsets(const onnx::ModelProto& model, Graph& g) {
  for (const auto& os : model.opset_import()) {
    std::string d = domain_of(os.domain());
    int v = static_cast<int>(os.version());
    if (d.empty() && v > kMaxOpset) {
      log_warning("model uses opset " + std::to_string(v) + " of ai.onnx; kiln reads it as opset " +
                  std::to_string(kMaxOpset) + ", the newest it supports");
      v = kMaxOpset;
    }
    g.opsets[d] = v;
  }
  if (model.opset_import_size() == 0) g.opsets[""] = 1;  // IR version 2 models had no imports
  return Status::ok();
}

Expected<AttrValue> Importer::read_attr(const onnx::AttributeProto& a, const std::string& where) {
  using A = onnx::AttributeProto;
  if (!a.ref_attr_name().empty())
    return err(where, ": attribute '", a.name(), "' refers to a function attribute, which is not supported");
  switch (a.type()) {
    case A::FLOAT: return AttrValue(a.f());
    case A::INT: return AttrValue(static_cast<int64_t>(a.i()));
    case A::STRING: return AttrValue(a.s());
    case A::TENSOR: {
      auto t = decode_tensor(a.t(), &external_);
      if (!t) return err(where, ": attribute '", a.name(), "': ", t.status().message());
      return AttrValue(std::move(t).value());
    }
    case A::FLOATS: return AttrValue(std::vector<float>(a.floats().begin(), a.floats().end()));
    case A::INTS: return AttrValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case A::STRINGS: return AttrValue(std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case A::TENSORS: {
      std::vector<Tensor> ts;
      for (const auto& tp : a.tensors()) {
        auto t = decode_tensor(tp, &external_);
        if (!t) return err(where, ": attribute '", a.name(), "': ", t.status().message());
        ts.push_back(std::move(t).value());
      }
      return AttrValue(std::move(ts));
    }
    case A::GRAPH: {
      KILN_ASSIGN_OR_RETURN(std::shared_ptr<Graph> g, read_subgraph(a.g(), where + ": subgraph '" + a.name() + "'"));
      return AttrValue(std::move(g));
    }
    case A::GRAPHS:
      return err(where, ": attribute '", a.name(), "' is a list of graphs, which no supported operator takes");
    case A::TYPE_PROTO:
    case A::TYPE_PROTOS:
      // Only the Optional and Sequence* constructors take type attributes (the type of an empty
      // optional / sequence); those value kinds are not supported.
      return err(where, ": attribute '", a.name(), "' is a type (TypeProto), which only ops building optional or ",
                 "sequence values take; optional and sequence values are not supported");
    default:
      return err(where, ": attribute '", a.name(), "' has unsupported type ", static_cast<int>(a.type()));
  }
}

Status Importer::constant_to_initializer(const onnx::NodeProto& np, Graph& g) {
  std::string where = "node '" + np.name() + "' (Constant)";
  if (np.output_size() != 1 || np.attribute_size() != 1)
    return err(where, ": a Constant needs exactly one output and one value attribute");
  const auto& a = np.attribute(0);
  Tensor t;
  if (a.name() == "value") {
    KILN_ASSIGN_OR_RETURN(AttrValue v, read_attr(a, where));
    if (!std::holds_alternative<Tensor>(v)) return err(where, ": 'value' is not a tensor");
    t = std::get<Tensor>(v);
  } else if (a.name() == "value_float") {
    t = Tensor::scalar<float>(a.f());
  } else if (a.name() == "value_floats") {
    t = Tensor::from_vector<float>({a.floats_size()}, {a.floats().begin(), a.floats().end()});
  } else if (a.name() == "value_int") {
    t = Tensor::scalar<int64_t>(a.i());
  } else if (a.name() == "value_ints") {
    t = Tensor::from_vector<int64_t>({a.ints_size()}, {a.ints().begin(), a.ints().end()});
  } else {
    return err(where, ": Constant attribute '", a.name(), "' (string or sparse tensor) is not supported");
  }
  auto v = g.add_initializer(np.output(0), std::move(t));
  if (!v) return err(where, ": ", v.status().message());
  return Status::ok();
}

Status Importer::read_node(const onnx::NodeProto& np, Graph& g, size_t index) {
  std::string d = domain_of(np.domain());
  if (d.empty() && np.op_type() == "Constant") return constant_to_initializer(np, g);
  auto node = std::make_unique<Node>();
  node->name = np.name().empty() ? np.op_type() + "_" + std::to_string(index) : np.name();
  node->op_type = np.op_type();
  node->domain = d;
  auto os = g.opsets.find(d);
  if (os == g.opsets.end())
    return err(node->label(), ": domain '", d, "' is not in the model's opset imports");
  node->opset = os->second;
  for (const auto& in : np.input()) {
    if (in.empty()) { node->inputs.push_back(nullptr); continue; }
    Value* v = resolve(in);
    if (!v) return err(node->label(), ": input '", in, "' is not defined by any earlier node, input or initializer",
                       scopes_.size() > 1 ? " of this subgraph or an enclosing graph" : "");
    node->inputs.push_back(v);
  }
  for (const auto& a : np.attribute()) {
    KILN_ASSIGN_OR_RETURN(AttrValue v, read_attr(a, node->label()));
    node->attrs[a.name()] = std::move(v);
  }
  for (const auto& out : np.output()) {
    if (out.empty()) { node->outputs.push_back(nullptr); continue; }
    if (g.find_value(out)) return err(node->label(), ": output '", out, "' is already defined (not SSA)");
    KILN_ASSIGN_OR_RETURN(Value * v, g.add_value(out));
    node->outputs.push_back(v);
  }
  g.add_node(std::move(node));
  return Status::ok();
}

// ONNX requires nodes in topological order; exporters comply, but this also gives cycles and
// forward references a precise message instead of "undefined input".
// `outer`: whether a name is defined by an enclosing graph (subgraphs may read those).
Status check_topological(const onnx::GraphProto& gp, const std::function<bool(const std::string&)>& outer) {
  std::set<std::string> defined, produced_later;
  for (const auto& i : gp.input()) defined.insert(i.name());
  for (const auto& i : gp.initializer()) defined.insert(i.name());
  for (const auto& n : gp.node()) for (const auto& o : n.output()) produced_later.insert(o);
  for (const auto& n : gp.node()) {
    for (const auto& in : n.input()) {
      if (in.empty() || defined.count(in) || (!produced_later.count(in) && outer(in))) continue;
      std::string where = "node '" + n.name() + "' (" + n.op_type() + ")";
      if (produced_later.count(in))
        return err(where, ": input '", in, "' is produced by a later node: the graph has a cycle or is not in topological order");
      return err(where, ": input '", in, "' is not defined by any node, graph input or initializer");
    }
    for (const auto& o : n.output()) defined.insert(o);
  }
  return Status::ok();
}

Status Importer::read_graph(const onnx::GraphProto& gp, Graph& g) {
  g.name = gp.name();
  KILN_RETURN_IF_ERROR(check_topological(gp, [&](const std::string& n) { return defined_outside(n); }));
  const bool subgraph = scopes_.size() > 1;
  // An empty name means "no value" in ONNX (an omitted optional input), and in kiln's engine file.
  for (const auto& init : gp.initializer())
    if (init.name().empty()) return err("an initializer has an empty name");
  for (int i = 0; i < gp.input_size(); ++i)
    if (gp.input(i).name().empty()) return err("graph input ", i, " has an empty name");
  for (const auto& init : gp.initializer()) {
    auto t = decode_tensor(init, &external_);
    if (!t) return t.status();
    auto v = g.add_initializer(init.name(), std::move(t).value());
    if (!v) return err("initializer: ", v.status().message());
  }
  if (gp.sparse_initializer_size() > 0) return err("sparse initializers are not supported");
  for (const auto& in : gp.input()) {
    // Old exporters list initializers as inputs too; the initializer is the value (a default
    // the user could override in ONNX Runtime; kiln treats it as a constant weight).
    if (g.find_value(in.name())) continue;
    KILN_ASSIGN_OR_RETURN(DataType t, value_type(in, subgraph));
    KILN_ASSIGN_OR_RETURN(Value * v, g.add_value(in.name(), t, value_shape(in)));
    v->is_graph_input = true;
    g.inputs.push_back(v);
  }
  for (int i = 0; i < gp.node_size(); ++i) KILN_RETURN_IF_ERROR(read_node(gp.node(i), g, i));
  for (const auto& out : gp.output()) {
    Value* v = resolve(out.name());  // a subgraph may return an enclosing graph's value
    if (!v) return err("graph output '", out.name(), "' is not produced by any node");
    if (v->dtype == DataType::kUndefined) {
      auto t = value_type(out);
      if (t) v->dtype = *t;
    }
    if (!v->shape.rank_known()) v->shape = value_shape(out);
    g.outputs.push_back(v);
  }
  return Status::ok();
}

// Appends each (domain, op) without a schema, first node first, subgraphs included.
void list_unsupported(const Graph& g, std::set<std::pair<std::string, std::string>>& seen,
                      std::vector<std::string>& missing, std::vector<UnsupportedOp>* out) {
  for (const auto& n : g.nodes()) {
    if (!OpRegistry::global().find(n->domain, n->op_type) && seen.insert({n->domain, n->op_type}).second) {
      if (out) out->push_back({n->op_type, n->domain, n->opset, n->name});
      missing.push_back(n->op_type + " (domain '" + (n->domain.empty() ? "ai.onnx" : n->domain) + "', opset " +
                        std::to_string(n->opset) + ") first at node '" + n->name + "'");
    }
    for (const Graph* sub : n->subgraphs()) list_unsupported(*sub, seen, missing, out);
  }
}

Expected<std::unique_ptr<Graph>> Importer::run(const onnx::ModelProto& model) {
  if (model.ir_version() < kMinIrVersion || model.ir_version() > kMaxIrVersion)
    return err("ONNX IR version ", model.ir_version(), " is not supported (kiln reads ", kMinIrVersion, " to ",
               kMaxIrVersion, ")");
  if (!model.has_graph()) return err("the model has no graph");
  auto g = std::make_unique<Graph>();
  KILN_RETURN_IF_ERROR(read_opsets(model, *g));
  scopes_ = {g.get()};
  KILN_RETURN_IF_ERROR(read_graph(model.graph(), *g));
  KILN_RETURN_IF_ERROR(g->verify());
  for (const auto& [location, file] : external_.files()) g->mapped_files.push_back(file);

  if (opts_.require_supported_ops) {
    std::vector<std::string> missing;
    std::set<std::pair<std::string, std::string>> seen;
    list_unsupported(*g, seen, missing, opts_.unsupported_out);
    if (!missing.empty()) {
      std::string msg = "unsupported operators (" + std::to_string(missing.size()) + "):";
      for (const auto& m : missing) msg += "\n  " + m;
      return Status::error(msg);
    }
  }
  if (opts_.run_shape_inference) KILN_RETURN_IF_ERROR(infer_graph(*g));
  return g;
}

Expected<std::unique_ptr<Graph>> parse_model(const std::string& bytes, const std::string& base_dir,
                                             const ImportOptions& opts, const std::string& what) {
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(std::min<size_t>(bytes.size(), INT_MAX)));
  in.SetTotalBytesLimit(INT_MAX);
  if (bytes.size() > INT_MAX)
    return err(what, " is over 2 GiB; store the weights as external data (ONNX's limit for one file)");
  if (!model.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
    return err(what, " is not a valid ONNX model (truncated or corrupted protobuf)");
  Importer imp(opts, base_dir);
  auto g = imp.run(model);
  if (!g) return err(what, ": ", g.status().message());
  return g;
}

}  // namespace

Expected<std::unique_ptr<Graph>> import_file(const std::string& path, const ImportOptions& opts) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  if (bytes.empty()) return err("'", path, "' is empty");
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  return parse_model(bytes, dir, opts, "'" + path + "'");
}

Expected<std::unique_ptr<Graph>> import_bytes(const std::string& bytes, const std::string& base_dir,
                                              const ImportOptions& opts) {
  return parse_model(bytes, base_dir, opts, "model bytes");
}

}  // namespace kiln::onnx_import
