// The rewrite driver: rules (a pattern and what replaces it) applied greedily to a fixpoint, and
// the Rewriter a rule builds its replacement with.
//
//   const Rule kRules[] = {{"conv_add_relu", conv_add_relu_pattern(), [](const Match& m, Rewriter& rw) {
//     Node* y = rw.replace_root("ConvAct", "kiln", {m["x"], m["w"], m["b"], m["z"]}, m.node("conv")->attrs);
//     y->attrs["activation"] = std::string("Relu");
//     return true; }}};
//   apply(graph, ctx, "fuse_epilogue", kRules);
//
// Each sweep visits the nodes from the last to the first (a rule anchored at a consumer sees its
// whole producer chain before a smaller rule anchored inside it fires) and tries the rules in
// order at each; a node another match of the sweep covers is skipped. Replacements stand where
// the root stood, so every input they read is still defined before them; the matched nodes go.
// Sweeps repeat until one changes nothing. Counters "<pass>.<rule>" count the firings (--verbose).
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "passes/pipeline.h"
#include "passes/rewrite/pattern.h"

namespace kiln::passes::rewrite {

class Rewriter {
 public:
  Rewriter(Graph& graph, const Match& match) : graph_(graph), match_(match) {}

  // A new node inserted before the root (in order), with fresh output values named after the
  // root's first output; its name is the root's name plus "/" + `suffix`.
  Expected<Node*> insert(const std::string& op_type, const std::string& domain, std::vector<Value*> inputs,
                         std::vector<std::pair<DataType, Shape>> outputs, const std::string& suffix);
  // A fresh value named `name` (which must be new) and a node inserted before the root that
  // produces `outputs` (values made with value(), or outputs of matched nodes the rewrite
  // re-makes): for rewrites that keep the names the pass had before the rewrite layer.
  Expected<Value*> value(const std::string& name, DataType dtype, Shape shape = Shape::unknown_rank()) {
    return graph_.add_value(name, dtype, std::move(shape));
  }
  Node* add(const std::string& op_type, const std::string& domain, std::vector<Value*> inputs,
            std::vector<Value*> outputs, std::string name);
  // The node that takes the root's place: it produces the root's outputs (all of them, or the
  // `outputs` given). Named after the matched nodes ("conv1+Add+Relu") unless `name` is given.
  Node* replace_root(const std::string& op_type, const std::string& domain, std::vector<Value*> inputs,
                     std::map<std::string, AttrValue> attrs = {}, std::vector<Value*> outputs = {},
                     std::string name = "");
  // A copy of the root (name, opset, attributes) as its replacement, for the rule to edit
  // (the same Reshape of a new input, a constant target instead of a computed one).
  Node* replace_root_with_copy();
  // The opset new default-domain nodes get (pipeline.h's default_opset).
  int default_opset() const { return passes::default_opset(graph_); }
  // A constant of the graph (weights a rule derives: a permuted kernel, a folded scale).
  Expected<Value*> constant(const std::string& name, Tensor tensor) { return graph_.add_initializer(name, std::move(tensor)); }

  Graph& graph() { return graph_; }
  bool replaced() const { return replaced_; }
  // What apply() splices in for the match (the inserted nodes, then the root's replacement).
  std::vector<std::unique_ptr<Node>> take() { return std::move(made_); }

 private:
  Graph& graph_;
  const Match& match_;
  std::vector<std::unique_ptr<Node>> made_;
  bool replaced_ = false;
};

struct Rule {
  const char* name;
  Pattern pattern;
  // Builds the replacement; false declines (a check the pattern cannot say), leaving the graph
  // as it was (a rule that declines must not have called the Rewriter).
  std::function<bool(const Match&, Rewriter&)> rewrite;
  // Readers outside the match that do not stop it because they die with it (fuse_mha: the Shape
  // nodes of the exporters' shape arithmetic). With it, the covered nodes other than the root are
  // left in place for the pass's dead-node elimination instead of being removed.
  std::function<bool(const Node&)> dead_reader = nullptr;
};

// The order of each sweep: kLastFirst (consumers before the producers inside their pattern), or
// kFirstFirst where it does not matter and the names a rewrite makes depend on the order.
enum class Order { kLastFirst, kFirstFirst };

// Applies `rules` to a fixpoint; returns the number of rewrites (also in ctx.counters).
Expected<int> apply(Graph& graph, PassContext& ctx, const std::string& pass, std::span<const Rule> rules,
                    Order order = Order::kLastFirst);

}  // namespace kiln::passes::rewrite
