#include "passes/rewrite/pattern.h"

#include <algorithm>
#include <cmath>

namespace kiln::passes::rewrite {

Pattern op(std::string op_type, std::vector<Pattern> operands) {
  Pattern p = op(std::move(op_type));
  p.operands_ = std::move(operands);
  p.check_operands_ = true;
  return p;
}
Pattern op(std::string op_type) {
  Pattern p;
  p.kind_ = Pattern::Kind::kOp;
  p.op_ = std::move(op_type);
  return p;
}
Pattern any() { return Pattern(); }
Pattern constant() {
  Pattern p;
  p.kind_ = Pattern::Kind::kConstant;
  return p;
}
Pattern scalar(double value) {
  Pattern p;
  p.kind_ = Pattern::Kind::kScalar;
  p.scalar_ = value;
  return p;
}
Pattern scalar() {
  Pattern p;
  p.kind_ = Pattern::Kind::kAnyScalar;
  return p;
}
Pattern absent() {
  Pattern p;
  p.kind_ = Pattern::Kind::kAbsent;
  return p;
}
Pattern either(std::vector<Pattern> alternatives) {
  Pattern p;
  p.kind_ = Pattern::Kind::kEither;
  p.operands_ = std::move(alternatives);
  return p;
}

Uses::Uses(const Graph& graph) {
  graph_outputs.insert(graph.outputs.begin(), graph.outputs.end());
  for (const auto& n : graph.nodes()) {
    for (const Value* v : n->inputs) if (v) readers[v].push_back(n.get());
    for (const Value* v : n->implicit_inputs()) readers[v].push_back(n.get());
  }
}

const std::vector<Node*>& Uses::of(const Value* v) const {
  static const std::vector<Node*> none;
  auto it = readers.find(v);
  return it == readers.end() ? none : it->second;
}

Node* Uses::only(const Value* v) const {
  const auto& r = of(v);
  return r.size() == 1 && !graph_outputs.count(v) ? r[0] : nullptr;
}

Value* Match::operator[](const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? nullptr : it->second;
}
Node* Match::node(const std::string& name) const {
  auto it = producers.find(name);
  return it == producers.end() ? nullptr : it->second;
}

// Depth-first with backtracking: each step takes the continuation that matches the rest, so a
// later failure (the interior check at the end included) retries the earlier choice points:
// either()'s alternatives and a commutative op's second operand order. The match state is copied
// at each choice point (patterns are a few nodes deep).
class Matcher {
 public:
  using Cont = std::function<bool(Match&)>;

  bool value_only(Value* v, const Pattern& p, Match& m) const {
    return value(v, p, m, [](Match&) { return true; }, true);
  }

  // kept: under a .keep() pattern (matched, not covered).
  bool node(Node* n, const Pattern& p, Match& m, const Cont& k, bool kept = false) const {
    if (p.kind_ == Pattern::Kind::kEither) {
      for (const Pattern& alt : p.operands_) {
        Match trial = m;
        if (node(n, alt, trial, k, kept)) { m = std::move(trial); return true; }
      }
      return false;
    }
    if (p.kind_ != Pattern::Kind::kOp || !n || n->op_type != p.op_ || n->domain != p.domain_) return false;
    for (const auto& pred : p.node_preds_) if (!pred(*n)) return false;
    kept = kept || p.keep_;
    if (!kept && std::find(m.nodes.begin(), m.nodes.end(), n) == m.nodes.end()) m.nodes.push_back(n);
    if (!p.capture_.empty()) m.producers[p.capture_] = n;
    if (!p.check_operands_) return k(m);
    const auto& ops = p.operands_;
    if (n->inputs.size() > ops.size()) return false;
    if (ops.size() == 2 && p.commutative_ && n->inputs.size() == 2) {
      Match trial = m;
      if (operands(n, ops, {0, 1}, 0, trial, k, kept)) { m = std::move(trial); return true; }
      return operands(n, ops, {1, 0}, 0, m, k, kept);
    }
    std::vector<size_t> order(ops.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    return operands(n, ops, order, 0, m, k, kept);
  }

 private:
  // Operand patterns i.. against inputs order[i].. of n, then k.
  bool operands(Node* n, const std::vector<Pattern>& ops, const std::vector<size_t>& order, size_t i, Match& m,
                const Cont& k, bool kept) const {
    if (i == ops.size()) return k(m);
    size_t at = order[i];
    Value* v = at < n->inputs.size() ? n->inputs[at] : nullptr;
    if (!v)
      return (ops[i].optional_ || ops[i].kind_ == Pattern::Kind::kAbsent) && operands(n, ops, order, i + 1, m, k, kept);
    return value(v, ops[i], m, [&](Match& mm) { return operands(n, ops, order, i + 1, mm, k, kept); }, kept);
  }

  bool value(Value* v, const Pattern& p, Match& m, const Cont& k, bool kept) const {
    if (!v) return false;
    if (!p.capture_.empty()) {
      auto it = m.values.find(p.capture_);
      if (it != m.values.end() && it->second != v) return false;
    }
    for (const auto& pred : p.preds_) if (!pred(*v)) return false;
    auto bind = [&](Match& mm) {
      if (!p.capture_.empty()) mm.values[p.capture_] = v;
      return k(mm);
    };
    switch (p.kind_) {
      case Pattern::Kind::kAny: return bind(m);
      case Pattern::Kind::kConstant: return v->initializer && bind(m);
      case Pattern::Kind::kScalar: {
        if (!v->initializer || v->initializer->numel() != 1) return false;
        double x = v->initializer->get_as_double(0);
        return std::abs(x - p.scalar_) <= 1e-5 * std::max(1.0, std::abs(p.scalar_)) && bind(m);
      }
      case Pattern::Kind::kAnyScalar: return v->initializer && v->initializer->numel() == 1 && bind(m);
      case Pattern::Kind::kAbsent: return false;
      case Pattern::Kind::kOp: return node(v->producer, p, m, bind, kept);
      case Pattern::Kind::kEither:
        for (const Pattern& alt : p.operands_) {
          Match trial = m;
          if (value(v, alt, trial, bind, kept)) { m = std::move(trial); return true; }
        }
        return false;
    }
    return false;
  }
};

// Interior nodes go away: everything they produce must be read inside the match only.
bool interior_ok(const Match& m, const Uses& uses, const std::function<bool(const Node&)>& dead_reader) {
  std::set<const Node*> inside(m.nodes.begin(), m.nodes.end());
  for (const Node* n : m.nodes) {
    if (n == m.root) continue;
    for (const Value* o : n->outputs) {
      if (!o) continue;
      if (uses.graph_outputs.count(o)) return false;
      for (const Node* r : uses.of(o))
        if (!inside.count(r) && !(dead_reader && dead_reader(*r))) return false;
    }
  }
  return true;
}

bool match(Node* root, const Pattern& pattern, const Uses& uses, Match& out,
           const std::function<bool(const Node&)>& dead_reader) {
  Match m;
  m.root = root;
  return Matcher().node(root, pattern, m, [&](Match& done) {
    if (!interior_ok(done, uses, dead_reader)) return false;
    out = done;
    return true;
  });
}

}  // namespace kiln::passes::rewrite

namespace kiln::passes::rewrite {

bool match_value(Value* v, const Pattern& pattern, Match& out) {
  Match m;
  if (!Matcher().value_only(v, pattern, m)) return false;
  out = std::move(m);
  return true;
}

}  // namespace kiln::passes::rewrite
