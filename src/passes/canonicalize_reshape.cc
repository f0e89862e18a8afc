// canonicalize_reshape: gives a Reshape whose target shape is assembled at run time from the
// input's own dims a constant target, so the shape arithmetic goes (no Shape/Gather/Concat at
// run time) and the passes after it see a constant target. Exporters write `x.view(x.shape[0], x.shape[1], -1, 64)` as
//
//   before:  %s = Shape(%y)  %b = Gather(%s, 0)  %t = Gather(%s, 1)         (%y: [batch, 128, 768])
//            %c = Concat(Unsqueeze(%b), Unsqueeze(%t), [-1], [64])
//            %r = Reshape(%x, %c)                                            (%x: [batch, 128, 768])
//   after:   %r = Reshape(%x, [0, 0, -1, 64])   -> inferred [batch, 128, 12, 64]
//
// An element becomes 0 ("copy the input's dim", allowzero = 0) only when shape inference proves
// it equals the input's dim at that position: its inferred value (Value::dims_value, what the
// schemas know of Shape/Gather/Concat/Mul... arithmetic) is the same number or the same symbol
// ("batch", "12*batch") as that dim of %x. Other elements must be constants. The shape
// arithmetic left unread is removed.
// One rule of the rewrite driver (passes/rewrite), applied in rounds with shape inference between.
// Pre: types and shapes inferred, topological order. Post: same values, more known dims.
// Must not fire: allowzero = 1, an element read from a value whose dim differs or is unknown,
// a computed element that is not the input's dim at its place (e.g. batch * heads).
#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

// The constant target of Reshape n (whose target is a Concat on axis 0), or {} when it cannot be proven.
std::vector<int64_t> constant_target(const Node* n) {
  const Value *x = n->inputs[0], *shape = n->inputs[1];
  if (!x->shape.rank_known() || !shape->shape.rank_known() || shape->shape.rank() != 1) return {};
  std::vector<int64_t> out;
  for (Value* e : shape->producer->inputs) {
    if (!e) return {};
    if (e->initializer) {
      if (e->initializer->dims().size() != 1) return {};
      for (int64_t j = 0; j < e->initializer->numel(); ++j) out.push_back(int64_t(e->initializer->get_as_double(j)));
      continue;
    }
    auto dims = dims_value_of(e);  // computed elements: each must be the input's dim there
    if (!dims) return {};
    for (const Dim& d : *dims) {
      if (out.size() >= x->shape.rank() || !d.is_known() || d != x->shape[out.size()]) return {};
      out.push_back(0);
    }
  }
  int minus = 0;
  for (int64_t v : out) minus += v == -1;
  for (int64_t v : out) if (v < -1) return {};
  return minus <= 1 ? out : std::vector<int64_t>{};
}

// Reshape(%x, Concat(...)) -> the same Reshape of a constant target.
bool constant_reshape(const Match& m, Rewriter& rw) {
  const std::vector<int64_t> t = constant_target(m.root);
  if (t.empty()) return false;
  const std::string stem = m.root->inputs[1]->name + "/constant";
  std::string name = stem;
  for (int s = 1; rw.graph().find_value(name); ++s) name = stem + std::to_string(s);
  auto c = rw.constant(name, Tensor::from_vector<int64_t>({int64_t(t.size())}, t));
  if (!c) return false;
  rw.replace_root_with_copy()->inputs[1] = *c;
  return true;
}

}  // namespace

Status canonicalize_reshape(Graph& graph, PassContext& ctx) {
  static const Rule kRules[] = {
      {"rewritten", op("Reshape", {any(), op("Concat").attr("axis", 0, 0).keep()}).attr("allowzero", 0, 0), constant_reshape},
  };
  int rewritten = 0;
  for (int round = 0; round < 256; ++round) {
    KILN_ASSIGN_OR_RETURN(int changed, apply(graph, ctx, "canonicalize_reshape", kRules, Order::kFirstFirst));
    if (!changed) break;
    rewritten += changed;
    KILN_RETURN_IF_ERROR(infer_graph(graph));  // the next round sees the dims this one proved
  }
  ctx.counters["canonicalize_reshape.rewritten"] += 0;  // shown when 0 too
  if (rewritten) KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph, ctx));
  return Status::ok();
}

}  // namespace kiln::passes
