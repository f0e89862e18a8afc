// canonicalize_reshape: gives a Reshape whose target shape is assembled at run time from the
// input's own dims a constant target, so shape inference (and every pass after it) knows the
// output's dims. Exporters write `x.view(x.shape[0], x.shape[1], -1, 64)` as
//
//   before:  %s = Shape(%y)  %b = Gather(%s, 0)  %t = Gather(%s, 1)         (%y: [batch, 128, 768])
//            %c = Concat(Unsqueeze(%b), Unsqueeze(%t), [-1], [64])
//            %r = Reshape(%x, %c)                                            (%x: [batch, 128, 768])
//   after:   %r = Reshape(%x, [0, 0, -1, 64])   -> inferred [batch, 128, 12, 64]
//
// An element becomes 0 ("copy the input's dim", allowzero = 0) only when it provably equals the
// input's dim at that position: it is Gather(Shape(%y), k) (through Unsqueeze or as a 1-element
// Gather) and dim k of %y is the same number or the same named symbol as that dim of %x, or k
// is the position and %x is %y through dim-keeping ops (BERT: the Reshape of a Linear layer's
// output reads the batch from the layer's input, whose batch shape inference lost). Other
// elements must be constants. Rewrites repeat with shape inference until nothing changes (each
// round makes the next layer's dims known); the shape arithmetic left unread is removed.
// Pre: types and shapes inferred, topological order. Post: same values, more known dims.
// Must not fire: allowzero = 1, an element read from a value whose dim differs or is unknown,
// an element computed otherwise (e.g. batch * heads).
#include <map>

#include "ir/op_registry.h"
#include "passes/pattern.h"
#include "passes/pipeline.h"

namespace kiln::passes {

namespace {

bool is_op(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op && n->outputs.size() == 1; }

// Whether the 1-element value e is dim i of x, read through Shape -> Gather [-> Unsqueeze].
bool copies_dim(const Value* e, size_t i, const Value* x) {
  const Node* g = e->producer;
  if (is_op(g, "Unsqueeze")) g = g->inputs[0]->producer;
  if (!is_op(g, "Gather") || g->inputs.size() != 2 || g->attr_int("axis", 0) != 0) return false;
  const Tensor* k = g->inputs[1]->initializer;
  if (!k || k->numel() != 1) return false;
  const Node* sh = g->inputs[0]->producer;
  if (!is_op(sh, "Shape") || sh->has_attr("start") || sh->has_attr("end")) return false;
  const Shape& ys = sh->inputs[0]->shape;
  int64_t kk = int64_t(k->get_as_double(0));
  if (!ys.rank_known()) return false;
  if (kk < 0) kk += int64_t(ys.rank());
  if (kk < 0 || kk >= int64_t(ys.rank())) return false;
  return same_dim(ys[size_t(kk)], x->shape[i]) || (size_t(kk) == i && keeps_leading_dims(x, sh->inputs[0], i));
}

// The constant target of Reshape n, or {} when it cannot be proven.
std::vector<int64_t> constant_target(const Node* n) {
  const Value *x = n->inputs[0], *shape = n->inputs[1];
  const Node* c = shape->producer;
  if (shape->initializer || !is_op(c, "Concat") || c->attr_int("axis", 0) != 0) return {};
  if (!x->shape.rank_known() || !shape->shape.rank_known() || shape->shape.rank() != 1) return {};
  std::vector<int64_t> out;
  for (const Value* e : c->inputs) {
    if (!e) return {};
    if (e->initializer) {
      if (e->initializer->dims().size() != 1) return {};
      for (int64_t j = 0; j < e->initializer->numel(); ++j) out.push_back(int64_t(e->initializer->get_as_double(j)));
      continue;
    }
    if (out.size() >= x->shape.rank() || !copies_dim(e, out.size(), x)) return {};
    out.push_back(0);
  }
  int minus = 0;
  for (int64_t v : out) minus += v == -1;
  for (int64_t v : out) if (v < -1) return {};
  return minus <= 1 ? out : std::vector<int64_t>{};
}

}  // namespace

Status canonicalize_reshape(Graph& graph, PassContext& ctx) {
  int rewritten = 0;
  for (int round = 0; round < 256; ++round) {
    int changed = 0;
    for (const auto& np : graph.nodes()) {
      Node* n = np.get();
      if (!is_op(n, "Reshape") || n->inputs.size() != 2 || !n->inputs[1] || n->attr_int("allowzero", 0) != 0) continue;
      std::vector<int64_t> t = constant_target(n);
      if (t.empty()) continue;
      Tensor v = Tensor::zeros(DataType::kInt64, {int64_t(t.size())}).value();
      for (size_t i = 0; i < t.size(); ++i) v.mutable_data<int64_t>()[i] = t[i];
      std::string name = n->inputs[1]->name + "/constant";
      for (int s = 1; graph.find_value(name); ++s) name = n->inputs[1]->name + "/constant" + std::to_string(s);
      KILN_ASSIGN_OR_RETURN(Value * c, graph.add_initializer(name, std::move(v)));
      n->inputs[1] = c;
      ++changed;
    }
    if (!changed) break;
    rewritten += changed;
    KILN_RETURN_IF_ERROR(infer_graph(graph));  // the next round sees the dims this one proved
  }
  ctx.counters["canonicalize_reshape.rewritten"] += rewritten;
  if (rewritten) KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph, ctx));
  return Status::ok();
}

}  // namespace kiln::passes
