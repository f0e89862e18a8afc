#include "ir/graph.h"

#include <set>
#include <sstream>

namespace kiln {

std::string Node::label() const {
  std::string d = domain.empty() ? "" : domain + ".";
  return "node '" + name + "' (" + d + op_type + ")";
}

template <class T>
static const T* get_attr(const Node& n, const std::string& key) {
  auto it = n.attrs.find(key);
  return it == n.attrs.end() ? nullptr : std::get_if<T>(&it->second);
}

int64_t Node::attr_int(const std::string& key, int64_t def) const {
  const int64_t* v = get_attr<int64_t>(*this, key);
  return v ? *v : def;
}
float Node::attr_float(const std::string& key, float def) const {
  if (const float* v = get_attr<float>(*this, key)) return *v;
  if (const int64_t* i = get_attr<int64_t>(*this, key)) return static_cast<float>(*i);
  return def;
}
std::string Node::attr_string(const std::string& key, const std::string& def) const {
  const std::string* v = get_attr<std::string>(*this, key);
  return v ? *v : def;
}
std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> def) const {
  const auto* v = get_attr<std::vector<int64_t>>(*this, key);
  return v ? *v : def;
}
std::vector<float> Node::attr_floats(const std::string& key, std::vector<float> def) const {
  const auto* v = get_attr<std::vector<float>>(*this, key);
  return v ? *v : def;
}
std::vector<std::string> Node::attr_strings(const std::string& key) const {
  const auto* v = get_attr<std::vector<std::string>>(*this, key);
  return v ? *v : std::vector<std::string>{};
}
const Tensor* Node::attr_tensor(const std::string& key) const { return get_attr<Tensor>(*this, key); }
const Graph* Node::attr_graph(const std::string& key) const {
  const auto* g = get_attr<std::shared_ptr<Graph>>(*this, key);
  return g ? g->get() : nullptr;
}

std::vector<const Graph*> Node::subgraphs() const {
  std::vector<const Graph*> out;
  for (const auto& [key, a] : attrs)
    if (const auto* g = std::get_if<std::shared_ptr<Graph>>(&a); g && *g) out.push_back(g->get());
  return out;
}

std::vector<Value*> Node::implicit_inputs() const {
  std::vector<Value*> out;
  std::set<const Value*> seen;
  for (const Graph* g : subgraphs())
    for (const auto& c : g->captures)
      if (seen.insert(c.outer).second) out.push_back(c.outer);
  return out;
}

Expected<Value*> Graph::add_value(const std::string& name, DataType dtype, Shape shape) {
  if (by_name_.count(name)) return err("value '", name, "' is defined more than once");
  auto v = std::make_unique<Value>();
  v->name = name;
  v->dtype = dtype;
  v->shape = std::move(shape);
  Value* p = v.get();
  values_.push_back(std::move(v));
  if (!name.empty()) by_name_[name] = p;
  return p;
}

Expected<Value*> Graph::add_initializer(const std::string& name, Tensor tensor) {
  KILN_ASSIGN_OR_RETURN(Value * v, add_value(name, tensor.dtype(), tensor.shape()));
  initializers_.push_back(std::make_unique<Tensor>(std::move(tensor)));
  v->initializer = initializers_.back().get();
  return v;
}

Status Graph::make_constant(Value* v, Tensor tensor) {
  if (v->is_graph_input) return err("cannot make graph input '", v->name, "' a constant");
  v->dtype = tensor.dtype();
  v->shape = tensor.shape();
  v->producer = nullptr;
  initializers_.push_back(std::make_unique<Tensor>(std::move(tensor)));
  v->initializer = initializers_.back().get();
  return Status::ok();
}

Value* Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Expected<Value*> Graph::add_capture(Value* outer) {
  KILN_ASSIGN_OR_RETURN(Value * v, add_value(outer->name, outer->dtype, outer->shape));
  v->is_capture = true;
  v->initializer = outer->initializer;
  captures.push_back({outer, v});
  return v;
}

Node* Graph::add_node(std::unique_ptr<Node> node) {
  for (Value* out : node->outputs)
    if (out) out->producer = node.get();
  nodes_.push_back(std::move(node));
  return nodes_.back().get();
}

Status Graph::verify() const {
  std::set<const Value*> defined;
  for (const auto& v : values_)
    if (v->initializer || v->is_graph_input || v->is_capture) defined.insert(v.get());
  for (const auto& n : nodes_) {
    for (const Value* in : n->implicit_inputs())
      if (!defined.count(in))
        return err(n->label(), ": its subgraph reads '", in->name, "', which is not defined before the node");
    for (const auto& [key, a] : n->attrs)
      if (const auto* g = std::get_if<std::shared_ptr<Graph>>(&a); g && *g)
        KILN_RETURN_IF_ERROR((*g)->verify().with_context(n->label() + ": subgraph '" + key + "': "));
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Value* in = n->inputs[i];
      if (in && !defined.count(in)) {
        if (in->producer)
          return err(n->label(), ": input ", i, " '", in->name,
                     "' is used before it is produced (the graph is not in topological order or has a cycle)");
        return err(n->label(), ": input ", i, " '", in->name, "' is not defined by any node, input or initializer");
      }
    }
    for (const Value* out : n->outputs) {
      if (!out) continue;
      if (defined.count(out) || out->producer != n.get())
        return err(n->label(), ": output '", out->name, "' is assigned more than once (not SSA)");
      defined.insert(out);
    }
  }
  for (const Value* out : outputs)
    if (!defined.count(out)) return err("graph output '", out->name, "' is never produced");
  return Status::ok();
}

std::string print_graph(const Graph& g) {
  std::ostringstream os;
  auto val = [](const Value* v) {
    return v ? "%" + v->name + ":" + dtype_name(v->dtype) + v->shape.to_string() : std::string("_");
  };
  for (const Value* in : g.inputs) os << "input " << val(in) << "\n";
  for (const auto& n : g.nodes()) {
    for (size_t i = 0; i < n->outputs.size(); ++i) os << (i ? ", " : "") << val(n->outputs[i]);
    os << " = " << (n->domain.empty() ? "" : n->domain + ".") << n->op_type << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i)
      os << (i ? ", " : "") << (n->inputs[i] ? "%" + n->inputs[i]->name : "_");
    os << ")";
    if (!n->attrs.empty()) {
      os << " {";
      bool first = true;
      for (const auto& [k, v] : n->attrs) {
        os << (first ? "" : ", ") << k;
        first = false;
        if (auto* i = std::get_if<int64_t>(&v)) os << "=" << *i;
        else if (auto* f = std::get_if<float>(&v)) os << "=" << *f;
        else if (auto* s = std::get_if<std::string>(&v)) os << "=\"" << *s << "\"";
        else if (auto* is = std::get_if<std::vector<int64_t>>(&v)) {
          os << "=[";
          for (size_t j = 0; j < is->size(); ++j) os << (j ? "," : "") << (*is)[j];
          os << "]";
        }
      }
      os << "}";
    }
    os << "\n";
  }
  for (const Value* out : g.outputs) os << "output " << val(out) << "\n";
  return os.str();
}

}  // namespace kiln
