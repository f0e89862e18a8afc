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
// One rule of the rewrite driver (passes/rewrite), applied in rounds with shape inference between.
// Pre: types and shapes inferred, topological order. Post: same values, more known dims.
// Must not fire: allowzero = 1, an element read from a value whose dim differs or is unknown,
// an element computed otherwise (e.g. batch * heads).
#include "ir/op_registry.h"
#include "passes/pattern.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

// Gather(Shape(%y), %k) [through Unsqueeze]: dim k of %y as a 1-element tensor.
const Pattern& dim_of_shape() {
  static const Pattern gather =
      op("Gather", {op("Shape", {any().as("y")}).where_node([](const Node& n) { return !n.has_attr("start") && !n.has_attr("end"); }),
                    constant().as("k").where([](const Value& v) { return v.initializer->numel() == 1; })})
          .attr("axis", 0, 0);
  static const Pattern p = either({op("Unsqueeze", {gather, any().optional()}), gather});
  return p;
}

// Whether the 1-element value e is dim i of x, read through Shape -> Gather [-> Unsqueeze].
bool copies_dim(Value* e, size_t i, const Value* x) {
  Match m;
  if (!match_value(e, dim_of_shape(), m)) return false;
  const Shape& ys = m["y"]->shape;
  int64_t kk = int64_t(m["k"]->initializer->get_as_double(0));
  if (!ys.rank_known()) return false;
  if (kk < 0) kk += int64_t(ys.rank());
  if (kk < 0 || kk >= int64_t(ys.rank())) return false;
  return same_dim(ys[size_t(kk)], x->shape[i]) || (size_t(kk) == i && keeps_leading_dims(x, m["y"], i));
}

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
    if (out.size() >= x->shape.rank() || !copies_dim(e, out.size(), x)) return {};
    out.push_back(0);
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
