#include "passes/rewrite/rewriter.h"

#include <algorithm>
#include <map>
#include <set>

namespace kiln::passes::rewrite {

Expected<Node*> Rewriter::insert(const std::string& op_type, const std::string& domain, std::vector<Value*> inputs,
                                 std::vector<std::pair<DataType, Shape>> outputs, const std::string& suffix) {
  auto n = std::make_unique<Node>();
  n->name = match_.root->name + "/" + suffix;
  n->op_type = op_type;
  n->domain = domain;
  n->opset = domain.empty() ? default_opset() : 1;
  n->inputs = std::move(inputs);
  const std::string base = (match_.root->outputs.empty() || !match_.root->outputs[0] ? match_.root->name
                                                                                     : match_.root->outputs[0]->name) + "/" + suffix;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string stem = i == 0 ? base : base + "_" + std::to_string(i);
    std::string name = stem;
    for (int k = 1; graph_.find_value(name); ++k) name = stem + "_" + std::to_string(k);
    KILN_ASSIGN_OR_RETURN(Value* v, graph_.add_value(name, outputs[i].first, outputs[i].second));
    v->producer = n.get();
    n->outputs.push_back(v);
  }
  made_.push_back(std::move(n));
  return made_.back().get();
}

Node* Rewriter::add(const std::string& op_type, const std::string& domain, std::vector<Value*> inputs,
                    std::vector<Value*> outputs, std::string name) {
  auto n = std::make_unique<Node>();
  n->name = std::move(name);
  n->op_type = op_type;
  n->domain = domain;
  n->opset = domain.empty() ? default_opset() : 1;
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);  // their producer is set when apply() splices
  made_.push_back(std::move(n));
  return made_.back().get();
}

Node* Rewriter::replace_root_with_copy() {
  replaced_ = true;
  made_.push_back(std::make_unique<Node>(*match_.root));
  return made_.back().get();
}

Node* Rewriter::replace_root(const std::string& op_type, const std::string& domain, std::vector<Value*> inputs,
                             std::map<std::string, AttrValue> attrs, std::vector<Value*> outputs, std::string name) {
  auto n = std::make_unique<Node>();
  if (name.empty()) {
    // Matched nodes in graph order: "conv1+Add+Relu".
    for (const Node* m : match_.nodes)
      name += name.empty() ? m->name : "+" + m->op_type;
  }
  n->name = std::move(name);
  n->op_type = op_type;
  n->domain = domain;
  n->opset = domain.empty() ? default_opset() : 1;
  n->inputs = std::move(inputs);
  n->attrs = std::move(attrs);
  n->outputs = outputs.empty() ? match_.root->outputs : std::move(outputs);
  replaced_ = true;
  made_.push_back(std::move(n));
  return made_.back().get();
}

Expected<int> apply(Graph& graph, PassContext& ctx, const std::string& pass, std::span<const Rule> rules,
                    Order order) {
  int total = 0;
  for (int sweep = 0; sweep < 64; ++sweep) {
    const Uses uses(graph);
    std::map<const Node*, size_t> pos;
    for (size_t i = 0; i < graph.nodes().size(); ++i) pos[graph.nodes()[i].get()] = i;
    std::set<const Node*> taken, left;  // left: covered, but left for dead-node elimination
    std::map<const Node*, std::vector<std::unique_ptr<Node>>> at_root;  // root -> what replaces it
    const auto& nodes = graph.nodes();
    for (size_t j = 0; j < nodes.size(); ++j) {
      Node* n = nodes[order == Order::kFirstFirst ? j : nodes.size() - 1 - j].get();
      if (taken.count(n)) continue;
      for (const Rule& rule : rules) {
        Match m;
        if (!match(n, rule.pattern, uses, m, rule.dead_reader)) continue;
        bool overlaps = false;
        for (const Node* x : m.nodes) overlaps |= taken.count(x) != 0;
        if (overlaps) continue;
        std::sort(m.nodes.begin(), m.nodes.end(), [&](const Node* a, const Node* b) { return pos.at(a) < pos.at(b); });
        Rewriter rw(graph, m);
        if (!rule.rewrite(m, rw)) continue;
        if (!rw.replaced()) return err(pass, ": rule ", rule.name, " fired without replacing its root");
        auto made = rw.take();
        taken.insert(m.nodes.begin(), m.nodes.end());
        if (rule.dead_reader)
          for (const Node* x : m.nodes) if (x != n) left.insert(x);
        at_root[n] = std::move(made);
        ctx.counters[pass + "." + rule.name] += 1;
        break;
      }
    }
    if (at_root.empty()) break;
    // Splice: each root gives way to its replacement nodes; the other matched nodes go.
    auto& list = graph.mutable_nodes();
    std::vector<std::unique_ptr<Node>> kept;
    kept.reserve(list.size());
    for (auto& n : list) {
      if (auto it = at_root.find(n.get()); it != at_root.end()) {
        for (auto& r : it->second) {
          for (Value* o : r->outputs) if (o) o->producer = r.get();
          kept.push_back(std::move(r));
        }
        continue;
      }
      if (!taken.count(n.get()) || left.count(n.get())) kept.push_back(std::move(n));
    }
    list = std::move(kept);
    total += static_cast<int>(at_root.size());
  }
  return total;
}

}  // namespace kiln::passes::rewrite
