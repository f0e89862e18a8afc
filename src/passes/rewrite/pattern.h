// Declarative patterns over the use-def graph, written the way the subgraph reads from its last
// node back to its inputs, and the matcher. A rule (rewriter.h) pairs one with what replaces it.
//
//   // Relu(Add(Conv(x, w, b?), z)), either Add operand the convolution:
//   Pattern p = op("Relu", {op("Add", {op("Conv").as("conv"), any().as("z")}).commutative()});
//
// - op(type, {operands}) matches a value produced by a node of that op (domain "" unless set
//   with .in()); its inputs match the operands one to one (trailing .optional() operands may be
//   absent). op(type) without a list does not look at the inputs.
// - any() matches any value; constant() one with an initializer; scalar(x) a one-element
//   constant within 1e-5 (relative) of x, scalar() any one-element constant; absent() an
//   omitted input (a trailing one, or a null one).
// - .as(name) captures the value (and, for op patterns, its node); a name used twice must bind
//   the same value both times (the erf GELU reads its input twice).
// - .where(pred) adds a predicate on the value; .commutative() lets a two-operand op match its
//   operands in either order (the written order is tried first).
// - either({p1, p2, ...}) tries alternatives in order (an exporter's variants of one subgraph);
//   maybe(p, wrap) is either({wrap(p), p}): an optional node on the way (a scale Mul).
// - .attr(key, value[, default]) requires an int or ints attribute (absent: the default, or
//   for ints an empty list); .where_node(pred) any other check of the node.
// - .keep() matches the subgraph without covering it: its nodes stay (dead-node elimination
//   takes them when the rewrite leaves them unread) and need not be read inside the match.
// Every node a match covers, except the root, must have all its outputs read inside the match
// and none be a graph output: the rewrite removes them.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes::rewrite {

class Pattern {
 public:
  enum class Kind { kOp, kAny, kConstant, kScalar, kAnyScalar, kAbsent, kEither };

  Pattern& as(std::string name) { capture_ = std::move(name); return *this; }
  Pattern& in(std::string domain) { domain_ = std::move(domain); return *this; }
  Pattern& commutative() { commutative_ = true; return *this; }
  Pattern& optional() { optional_ = true; return *this; }
  Pattern& keep() { keep_ = true; return *this; }
  Pattern& attr(std::string key, int64_t want, int64_t def) {
    return where_node([=](const Node& n) { return n.attr_int(key, def) == want; });
  }
  Pattern& attr(std::string key, std::vector<int64_t> want) {
    return where_node([=](const Node& n) { return n.attr_ints(key) == want; });
  }
  Pattern& where(std::function<bool(const Value&)> pred) { preds_.push_back(std::move(pred)); return *this; }
  // A predicate on the node an op pattern matched (attributes, input count).
  Pattern& where_node(std::function<bool(const Node&)> pred) { node_preds_.push_back(std::move(pred)); return *this; }

  Kind kind() const { return kind_; }
  const std::string& op_type() const { return op_; }
  const std::string& domain() const { return domain_; }

 private:
  friend Pattern op(std::string, std::vector<Pattern>);
  friend Pattern op(std::string);
  friend Pattern any();
  friend Pattern constant();
  friend Pattern scalar(double);
  friend Pattern scalar();
  friend Pattern absent();
  friend Pattern either(std::vector<Pattern>);
  friend class Matcher;

  Kind kind_ = Kind::kAny;
  std::string op_, domain_, capture_;
  std::vector<Pattern> operands_;
  bool check_operands_ = false, commutative_ = false, optional_ = false, keep_ = false;
  double scalar_ = 0;
  std::vector<std::function<bool(const Value&)>> preds_;
  std::vector<std::function<bool(const Node&)>> node_preds_;
};

Pattern op(std::string op_type, std::vector<Pattern> operands);
Pattern op(std::string op_type);
Pattern any();
Pattern constant();
Pattern scalar(double value);
Pattern scalar();
Pattern absent();
Pattern either(std::vector<Pattern> alternatives);
inline Pattern maybe(Pattern p, const std::function<Pattern(Pattern)>& wrap) { return either({wrap(p), p}); }

// Who reads each value (inputs and values subgraphs capture), and the graph outputs.
struct Uses {
  explicit Uses(const Graph& graph);
  std::map<const Value*, std::vector<Node*>> readers;
  std::set<const Value*> graph_outputs;
  const std::vector<Node*>& of(const Value* v) const;
  // The single reader of v, if v has exactly one and is not a graph output.
  Node* only(const Value* v) const;
};

struct Match {
  Node* root = nullptr;
  std::vector<Node*> nodes;                   // every node the match covers, the root included (not .keep()'s)
  std::map<std::string, Value*> values;       // captures
  std::map<std::string, Node*> producers;     // captures of op patterns: their nodes
  Value* operator[](const std::string& name) const;   // the captured value (null if not bound)
  Node* node(const std::string& name) const;          // the captured op pattern's node
};

// Matches `pattern` (an op pattern, or either() of op patterns) rooted at `root`. Readers outside
// the match that `dead_reader` accepts do not stop it (they die with the match: fuse_mha's Shape
// nodes).
bool match(Node* root, const Pattern& pattern, const Uses& uses, Match& out,
           const std::function<bool(const Node&)>& dead_reader = nullptr);
// Matches `pattern` against value v as a proof about how v is computed (the shape arithmetic a
// Reshape target is built from): nothing is covered, no reader is checked.
bool match_value(Value* v, const Pattern& pattern, Match& out);

}  // namespace kiln::passes::rewrite
