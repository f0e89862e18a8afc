// fuse_matmul_bias: folds a Linear layer's bias add, and a following Relu or GELU, into the
// MatMul, so the CUDA backend runs one cuBLASLt GEMM with a bias(+activation) epilogue instead of
// a GEMM and one elementwise kernel per op (transformers: 6 Linear layers and one GELU per block).
//
//   before:  %m = MatMul(%a, %w)              after:  %y = kiln.MatMulBias(%a, %w, %b)
//            %s = Add(%m, %b)     (or Add(%b, %m))             {activation = "" | "Relu" | "Gelu"}
//            [%y = Relu(%s) | %y = Gelu(%s) | the exporters' erf GELU of %s:
//             %d = Div(%s, sqrt2) (or Mul by 1/sqrt2), %e = Erf(%d), %p = Add(%e, 1),
//             %q = Mul(%s, %p), %y = Mul(%q, 0.5)  (or %q = Mul(%s, 0.5), %y = Mul(%q, %p),
//             or the dynamo exporter's %h = Mul(%p, 0.5), %y = Mul(%s, %h))]
//   without activation, a residual add also folds in (the GEMM's C operand, free on cuBLASLt):
//            %y = Add(%s, %z)  ->  %y = kiln.MatMulBias(%a, %w, %b, %z)   (%z of %y's shape)
// (%z's shape is proven equal dim by dim: the same known dims, or dims %s carries from %z through
// the layers between them, pattern.h's keeps_leading_dims: BERT's batch, unknown after inference)
//
// Fires only when %w is 2-D, %a has rank >= 2, %b is a constant 1-D tensor of %w's column count,
// every intermediate value is read only inside the pattern and is not a graph output, and the
// type is float32/float16/bfloat16. Pre: types and shapes inferred, topological order. Post: the
// fused node stands where the last matched node stood, so every input is defined before it.
// Must not fire: a MatMul whose output has another reader, a bias that is not constant or does not
// run along the last axis only; no residual after an activation, when the Add broadcasts, or
// when an unknown dim of %z is not proven to be %s's.
#include <cmath>
#include <map>
#include <set>

#include "passes/pattern.h"
#include "passes/pipeline.h"

namespace kiln::passes {

namespace {

bool is_op(const Node* n, const char* op, size_t ins = 2) {
  return n && n->domain.empty() && n->op_type == op && n->inputs.size() == ins && n->outputs.size() == 1;
}

// Whether v is a constant holding one number close to `want`.
bool is_scalar(const Value* v, double want) {
  if (!v || !v->initializer || v->initializer->numel() != 1) return false;
  return std::abs(v->initializer->get_as_double(0) - want) <= 1e-5 * std::max(1.0, std::abs(want));
}

// The input of binary node n that is not v (null when both are v).
Value* other(const Node* n, const Value* v) {
  if (n->inputs[0] == v) return n->inputs[1] == v ? nullptr : n->inputs[1];
  return n->inputs[1] == v ? n->inputs[0] : nullptr;
}

bool is_float(DataType t) { return t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16; }

// Matches the erf GELU of s (see the top); returns its nodes, the last one last, or {}.
std::vector<Node*> match_erf_gelu(const Readers& r, Value* s) {
  const auto& rs = r.all(s);
  if (rs.size() != 2 || r.graph_outputs.count(s)) return {};
  for (int first = 0; first < 2; ++first) {
    Node *d = rs[first], *o = rs[1 - first];
    bool scaled = (is_op(d, "Div") && d->inputs[0] == s && is_scalar(d->inputs[1], std::sqrt(2.0))) ||
                  (is_op(d, "Mul") && is_scalar(other(d, s), std::sqrt(0.5)));
    if (!scaled) continue;
    Node* e = r.only(d->outputs[0]);
    if (!is_op(e, "Erf", 1)) continue;
    Node* p = r.only(e->outputs[0]);
    if (!is_op(p, "Add") || !is_scalar(other(p, e->outputs[0]), 1.0)) continue;
    Value* pv = p->outputs[0];
    if (!is_op(o, "Mul")) continue;
    Value* hv = other(o, s);
    if (Node* h = hv ? hv->producer : nullptr; is_op(h, "Mul") && r.only(hv) == o && r.only(pv) == h &&
                                               is_scalar(other(h, pv), 0.5))
      return {d, e, p, h, o};  // s * (p * 0.5), the dynamo exporter's
    Node* q = r.only(o->outputs[0]);
    if (!is_op(q, "Mul")) continue;
    if (other(o, s) == pv && r.only(pv) == o && is_scalar(other(q, o->outputs[0]), 0.5))
      return {d, e, p, o, q};  // (s * p) * 0.5
    if (is_scalar(other(o, s), 0.5) && r.only(pv) == q && other(q, o->outputs[0]) == pv)
      return {d, e, p, o, q};  // (s * 0.5) * p
  }
  return {};
}

}  // namespace

Status fuse_matmul_bias(Graph& graph, PassContext& ctx) {
  const Readers r(graph);
  std::map<Node*, std::unique_ptr<Node>> replace;  // last matched node -> fused node
  std::set<Node*> drop;
  int gelus = 0, residuals = 0;
  for (const auto& np : graph.nodes()) {
    Node* mm = np.get();
    if (!is_op(mm, "MatMul") || drop.count(mm)) continue;
    Value *a = mm->inputs[0], *w = mm->inputs[1], *m = mm->outputs[0];
    if (!a || !w || !is_float(m->dtype) || a->dtype != m->dtype || w->dtype != m->dtype) continue;
    if (!a->shape.rank_known() || a->shape.rank() < 2 || !w->shape.rank_known() || w->shape.rank() != 2) continue;
    Node* add = r.only(m);
    if (!is_op(add, "Add")) continue;
    Value* b = other(add, m);
    if (!b || !b->initializer || b->dtype != m->dtype || b->initializer->dims().size() != 1) continue;
    if (!w->shape[1].is_static() || b->initializer->dims()[0] != w->shape[1].value()) continue;
    std::vector<Node*> tail;
    std::string act;
    Value* s = add->outputs[0];
    if (Node* next = r.only(s); is_op(next, "Relu", 1)) {
      tail = {next};
      act = "Relu";
    } else if (is_op(next, "Gelu", 1) && next->attr_string("approximate", "none") == "none") {
      tail = {next};
      act = "Gelu";
    } else if (auto g = match_erf_gelu(r, s); !g.empty()) {
      tail = std::move(g);
      act = "Gelu";
    }
    Value* residual = nullptr;
    if (Node* next = r.only(s); tail.empty() && is_op(next, "Add")) {
      Value* z = other(next, s);
      if (z && z->dtype == s->dtype && same_shape_by_construction(s, z) && same_shape_by_construction(next->outputs[0], z)) {
        residual = z;
        tail = {next};
      }
    }
    bool taken = false;
    for (Node* t : tail) taken |= drop.count(t) != 0;
    if (taken) continue;
    Node* last = tail.empty() ? add : tail.back();
    auto fused = std::make_unique<Node>();
    fused->name = mm->name + "+Add" + (act.empty() ? "" : "+" + act) + (residual ? "+Add" : "");
    fused->op_type = "MatMulBias";
    fused->domain = "kiln";
    fused->opset = 1;
    fused->attrs["activation"] = act;
    fused->inputs = {a, w, b};
    if (residual) fused->inputs.push_back(residual);
    fused->outputs = {last->outputs[0]};
    drop.insert(mm);
    drop.insert(add);
    for (Node* t : tail) drop.insert(t);
    gelus += act == "Gelu";
    residuals += residual != nullptr;
    replace[last] = std::move(fused);
  }
  const int fused = splice_fused(graph, replace, drop);
  ctx.counters["fuse_matmul_bias.fused"] += fused;
  ctx.counters["fuse_matmul_bias.gelu"] += gelus;
  ctx.counters["fuse_matmul_bias.residual"] += residuals;
  return Status::ok();
}

}  // namespace kiln::passes
