// What the pattern-matching passes (fuse_*, canonicalize_reshape) share: who reads each value,
// and the small proofs they make about values and shapes.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// Every node that reads each value (inputs and values its subgraphs capture), and the graph outputs.
struct Readers {
  explicit Readers(const Graph& graph) {
    graph_outputs.insert(graph.outputs.begin(), graph.outputs.end());
    for (const auto& n : graph.nodes()) {
      for (const Value* v : n->inputs) if (v) of[v].push_back(n.get());
      for (const Value* v : n->implicit_inputs()) of[v].push_back(n.get());
    }
  }
  std::map<const Value*, std::vector<Node*>> of;
  std::set<const Value*> graph_outputs;
  const std::vector<Node*>& all(const Value* v) const {
    static const std::vector<Node*> none;
    auto it = of.find(v);
    return it == of.end() ? none : it->second;
  }
  // The single reader of v, if v has exactly one and is not a graph output.
  Node* only(const Value* v) const {
    const auto& r = all(v);
    return r.size() == 1 && !graph_outputs.count(v) ? r[0] : nullptr;
  }
};

// Two dims proven equal: the same number or the same named symbol ("batch" == "batch").
inline bool same_dim(const Dim& a, const Dim& b) { return a == b && (a.is_static() || a.is_symbolic()); }

// Equal shapes whose every dim is a number or a named symbol; unknown dims prove nothing.
inline bool same_known_shape(const Shape& a, const Shape& b) {
  if (!a.rank_known() || a != b) return false;
  for (const Dim& d : a.dims()) if (!d.is_static() && !d.is_symbolic()) return false;
  return true;
}

// The number a one-element constant holds.
inline bool scalar_of(const Value* v, double* out) {
  if (!v || !v->initializer || v->initializer->numel() != 1) return false;
  *out = v->initializer->get_as_double(0);
  return true;
}

// Whether dim i (< rank - 1) of x is dim i of y because x is computed from y through ops that
// keep it (a Linear layer, bias Add, elementwise ops, LayerNormalization, 3-D Attention,
// kiln.PackedAttention, a Reshape whose constant target copies the leading dims), even when shape
// inference lost it.
bool keeps_leading_dims(const Value* x, const Value* y, size_t i, int depth = 0);

// Whether r has x's shape: every dim equal and known, or carried from r to x (keeps_leading_dims).
bool same_shape_by_construction(const Value* x, const Value* r);

// Rebuilds the node list: each key of `replace` gives way to its fused node (which becomes its
// outputs' producer), nodes in `drop` go, the rest keep their order. Returns how many were fused.
int splice_fused(Graph& graph, std::map<Node*, std::unique_ptr<Node>>& replace, const std::set<Node*>& drop);

}  // namespace kiln::passes
