// fuse_attention: turns an exported transformer's scaled-dot-product attention back into one
// ONNX Attention node (opset 23, 3-D form), which backends run as one fused kernel: the head
// split/merge transposes, the scores tensor and its scale/mask/softmax passes disappear.
//
//   before (the TorchScript exporter's SDPA, as in BERT):
//     %q4 = Reshape(%q, [B, S, H, D])   %qt = Transpose(%q4, [0,2,1,3])   [%qs = Mul(%qt, c1)]
//     %k4 = Reshape(%k, [B, S, H, D])   %kt = Transpose(%k4, [0,2,3,1])   [%ks = Mul(%kt, c2)]
//     %v4 = Reshape(%v, [B, S, H, D])   %vt = Transpose(%v4, [0,2,1,3])
//     %s = MatMul(%qs, %ks)  [%s = Div(%s, c3) | Mul(%s, c3)]  [%s = Add(%s, %mask)]
//     %p = Softmax(%s, axis=-1)  [%p = Where(IsNaN(%p), 0, %p)]
//     %o = MatMul(%p, %vt)   %ot = Transpose(%o, [0,2,1,3])   %y = Reshape(%ot, ...)
//   after:
//     %a = Attention(%q, %k, %v, [%mask]) {q_num_heads = kv_num_heads = H, scale = c1*c2/c3}
//     %y = Reshape(%a, ...)            (the original last Reshape, now of [B, S, H*D]: a view;
//                                       dropped when it provably gives [B, S, H*D], so that
//                                       %y keeps known dims for the fusions after)
//
// The dynamo exporter writes the same with head Reshapes by [-1, S, H, D] (allowzero = 1) and K^T
// as Reshape(Transpose(Reshape(%k4, [-1, S, D]), [0, 2, 1]), [B, H, D, S]), both targets cut from
// Shape(%k4) (dynamo_key_operand); the output Reshape by [-1, S, H*D].
//
// Where(IsNaN) is what the exporter adds for fully masked rows; Attention gives those rows zeros
// too. Fires only with --fp16/--bf16 (ctx.reduced_precision): the fused kernels are tensor-core
// kernels for 16-bit types; float32 keeps the unfused TF32 GEMMs. Pre: types and shapes
// inferred, topological order. Post: the Attention node stands where the last MatMul stood.
// Fires only when every intermediate value has exactly one reader inside the pattern and is not
// a graph output, Q, K and V are 3-D [B, S, H*D] with a static last dim, and each head Reshape
// provably splits [B, S, H*D] into [B, S, H, D] (constant H and D, one of them may be -1; B and
// S copied: 0, or read from a value with the same dims). Must not fire: other perms, a shared intermediate, fp32.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "ir/op_registry.h"
#include "passes/pattern.h"
#include "passes/pipeline.h"

namespace kiln::passes {

namespace {

bool is_op(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op && n->outputs.size() == 1; }

// The producer of v if it is `op` and v's only reader is `reader`.
Node* producer_for(const Readers& r, const Value* v, const char* op, const Node* reader) {
  Node* p = v ? v->producer : nullptr;
  return is_op(p, op) && r.only(v) == reader ? p : nullptr;
}

bool perm_is(const Node* t, std::vector<int64_t> p) { return t->attr_ints("perm") == p; }

// Element i (0 or 1) of a head Reshape's shape: proves it is dim i of x ([B, S, H*D]), as the
// same known dim or as a dim x carries from the value whose Shape it reads (keeps_leading_dims).
bool copies_dim(const Value* elem, int64_t i, const Value* x, const Value* shape_input, int64_t idx) {
  if (!elem) return false;
  if (elem->initializer) {
    const int64_t v = int64_t(elem->initializer->get_as_double(idx));
    return v == 0 || (x->shape[i].is_static() && v == x->shape[i].value());
  }
  // Unsqueeze(Gather(Shape(y), k)) with dim k of y equal to dim i of x.
  const Node* u = elem->producer;
  if (!is_op(u, "Unsqueeze") || u->inputs.empty()) return false;
  const Node* g = u->inputs[0]->producer;
  if (!is_op(g, "Gather") || g->inputs.size() != 2) return false;
  double k;
  if (!scalar_of(g->inputs[1], &k)) return false;
  const Node* sh = g->inputs[0]->producer;
  if (!is_op(sh, "Shape") || sh->has_attr("start") || sh->has_attr("end")) return false;
  const Shape& ys = sh->inputs[0]->shape;
  if (!ys.rank_known() || k < 0 || int64_t(k) >= int64_t(ys.rank())) return false;
  return same_dim(ys[size_t(k)], x->shape[i]) || (int64_t(k) == i && keeps_leading_dims(x, sh->inputs[0], size_t(i)));
}

// A constant Reshape target's zeros copy the input's dims (allowzero = 0); with allowzero = 1
// (the dynamo exporter) a target without zeros means the same.
bool zeros_copy(const Node* rs, const Tensor& target) {
  if (rs->attr_int("allowzero", 0) == 0) return true;
  for (int64_t i = 0; i < target.numel(); ++i) if (target.get_as_double(i) == 0) return false;
  return true;
}

// Whether Reshape node rs turns x [B, S, H*D] into [B, S, H, D]; sets heads and head size.
bool splits_heads(const Node* rs, int64_t* heads, int64_t* head) {
  if (rs->inputs.size() != 2) return false;
  const Value *x = rs->inputs[0], *shape = rs->inputs[1];
  if (!x->shape.rank_known() || x->shape.rank() != 3 || !x->shape[2].is_static()) return false;
  int64_t h = 0, d = 0;
  if (shape->initializer) {
    if (shape->initializer->numel() != 4 || !zeros_copy(rs, *shape->initializer)) return false;
    h = int64_t(shape->initializer->get_as_double(2));
    d = int64_t(shape->initializer->get_as_double(3));
    // The dynamo exporter's [-1, S, H, D]: with S, H and D fixed, -1 is the batch.
    const bool batch_inferred = shape->initializer->get_as_double(0) == -1 && h > 0 && d > 0;
    if (!(batch_inferred || copies_dim(shape, 0, x, shape, 0)) || !copies_dim(shape, 1, x, shape, 1)) return false;
  } else {
    if (rs->attr_int("allowzero", 0) != 0) return false;
    const Node* c = shape->producer;
    if (!is_op(c, "Concat") || c->inputs.size() != 4 || c->attr_int("axis", 0) != 0) return false;
    double hv, dv;
    if (!scalar_of(c->inputs[2], &hv) || !scalar_of(c->inputs[3], &dv)) return false;
    h = int64_t(hv);
    d = int64_t(dv);
    if (!copies_dim(c->inputs[0], 0, x, nullptr, 0) || !copies_dim(c->inputs[1], 1, x, nullptr, 0)) return false;
  }
  const int64_t e = x->shape[2].value();  // one of H, D may be -1 (transformers' view(B, S, -1, D))
  if (h == -1 && d > 0 && e % d == 0) h = e / d;
  if (d == -1 && h > 0 && e % h == 0) d = e / h;
  if (h <= 0 || d <= 0 || h * d != e) return false;
  *heads = h;
  *head = d;
  return true;
}

// Whether Reshape node y turns x's [B, S, H*D]-shaped twin back into exactly x's shape: shape
// [0 | B, 0 | S, H*D | -1] as a constant, or Concat(dim 0, dim 1, H*D | -1) of x's dims.
bool merges_heads(const Node* y, const Value* x) {
  if (y->inputs.size() != 2 || !x->shape.rank_known() || x->shape.rank() != 3 || !x->shape[2].is_static()) return false;
  const Value* shape = y->inputs[1];
  const int64_t e = x->shape[2].value();
  if (shape->initializer) {
    const Tensor& t = *shape->initializer;
    if (t.numel() != 3 || !zeros_copy(y, t)) return false;
    const int64_t last = int64_t(t.get_as_double(2));
    // [-1, S, H*D]: with S and H*D fixed, -1 is the batch.
    const bool batch_inferred = t.get_as_double(0) == -1 && last == e;
    return (last == e || last == -1) && (batch_inferred || copies_dim(shape, 0, x, shape, 0)) &&
           copies_dim(shape, 1, x, shape, 1);
  }
  if (y->attr_int("allowzero", 0) != 0) return false;
  const Node* c = shape->producer;
  double ev;
  return is_op(c, "Concat") && c->inputs.size() == 3 && c->attr_int("axis", 0) == 0 && scalar_of(c->inputs[2], &ev) &&
         (int64_t(ev) == e || int64_t(ev) == -1) && copies_dim(c->inputs[0], 0, x, nullptr, 0) &&
         copies_dim(c->inputs[1], 1, x, nullptr, 0);
}

struct Match {
  std::vector<Node*> nodes;  // to drop
  Value *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  Node* last_reshape = nullptr;  // kept, re-fed with the Attention's output (unless merged)
  bool merged = false;           // last_reshape only merged the heads back: dropped too
  Node* anchor = nullptr;        // the second MatMul: the Attention stands there
  int64_t heads = 0;
  double scale = 1.0;
};

// An optional Mul by a scalar on operand v of `reader`: folds the scalar into m.scale and steps
// over it (v and reader move up). False when a Mul is there but by no scalar.
bool strip_scale(const Readers& r, Value*& v, const Node*& reader, Match& m) {
  Node* mul = producer_for(r, v, "Mul", reader);
  if (!mul || mul->inputs.size() != 2) return true;
  double c;
  const int which = scalar_of(mul->inputs[1], &c) ? 0 : scalar_of(mul->inputs[0], &c) ? 1 : -1;
  if (which < 0) return false;
  m.scale *= c;
  m.nodes.push_back(mul);
  v = mul->inputs[which];
  reader = mul;
  return true;
}

// Operand `v` of the first MatMul (reader `mm`): [Mul by a scalar] of Transpose(perm) of a head
// Reshape. Returns the 3-D value, or null.
Value* head_operand(const Readers& r, Value* v, const Node* mm, std::vector<int64_t> perm, Match& m, int64_t* heads) {
  const Node* reader = mm;
  if (!strip_scale(r, v, reader, m)) return nullptr;
  Node* t = producer_for(r, v, "Transpose", reader);
  if (!t || !perm_is(t, perm)) return nullptr;
  Node* rs = producer_for(r, t->inputs[0], "Reshape", t);
  int64_t h, d;
  if (!rs || !splits_heads(rs, &h, &d)) return nullptr;
  if (*heads && *heads != h) return nullptr;
  *heads = h;
  m.nodes.push_back(t);
  m.nodes.push_back(rs);
  return rs->inputs[0];
}

// Whether v is Slice(Shape(k4), start, end) over k4's 4 dims, with [start, end) normalized as
// Python's slices are (the dynamo exporter's `k.shape[-2:-1]` and friends).
bool slices_shape(const Value* v, const Value* k4, int64_t start, int64_t end) {
  const Node* sl = v ? v->producer : nullptr;
  if (!is_op(sl, "Slice") || sl->inputs.size() < 3 || (sl->inputs.size() > 3 && sl->inputs[3])) return false;
  if (sl->inputs.size() > 4 && sl->inputs[4]) return false;  // steps
  const Node* sh = sl->inputs[0]->producer;
  if (!is_op(sh, "Shape") || sh->inputs[0] != k4 || sh->attr_int("start", 0) != 0 || sh->has_attr("end")) return false;
  double a, b;
  if (!scalar_of(sl->inputs[1], &a) || !scalar_of(sl->inputs[2], &b)) return false;
  auto norm = [](double x) { return int64_t(std::max(0.0, std::min(4.0, x < 0 ? x + 4 : x))); };
  return norm(a) == start && norm(b) == end;
}

// The dynamo exporter's K^T: Reshape(Transpose(Reshape(k4, [-1, S, D]), [0, 2, 1]), [B, H, D, S])
// with both targets cut from Shape(k4), where k4 = Transpose(Reshape(k, [B, S, H, D]), [0, 2, 1, 3]):
// the same values as Transpose(Reshape(k), [0, 2, 3, 1]). [Mul by a scalar] first. Returns the 3-D
// k, or null. k4's nodes are left to dead-node elimination (its Shape reads it too).
Value* dynamo_key_operand(const Readers& r, Value* v, const Node* mm, Match& m, int64_t* heads) {
  const Node* reader = mm;
  if (!strip_scale(r, v, reader, m)) return nullptr;
  Node* r2 = producer_for(r, v, "Reshape", reader);
  Node* t = r2 ? producer_for(r, r2->inputs[0], "Transpose", r2) : nullptr;
  Node* r1 = t && perm_is(t, {0, 2, 1}) ? producer_for(r, t->inputs[0], "Reshape", t) : nullptr;
  if (!r1 || r1->inputs.size() != 2 || r2->inputs.size() != 2) return nullptr;
  const Value* k4 = r1->inputs[0];
  const Node* t4 = k4->producer;
  if (!is_op(t4, "Transpose") || !perm_is(t4, {0, 2, 1, 3}) || !k4->shape.rank_known() || k4->shape.rank() != 4)
    return nullptr;
  const Node* rs = t4->inputs[0]->producer;
  int64_t h, d;
  if (!is_op(rs, "Reshape") || !splits_heads(rs, &h, &d) || (*heads && *heads != h)) return nullptr;
  const Node* c1 = r1->inputs[1]->producer;  // [-1, S, D]
  const Node* c2 = r2->inputs[1]->producer;  // [B, H, D, S]
  double minus_one;
  if (!is_op(c1, "Concat") || c1->inputs.size() != 3 || !scalar_of(c1->inputs[0], &minus_one) || minus_one != -1 ||
      !slices_shape(c1->inputs[1], k4, 2, 3) || !slices_shape(c1->inputs[2], k4, 3, 4))
    return nullptr;
  if (!is_op(c2, "Concat") || c2->inputs.size() != 3 || !slices_shape(c2->inputs[0], k4, 0, 2) ||
      !slices_shape(c2->inputs[1], k4, 3, 4) || !slices_shape(c2->inputs[2], k4, 2, 3))
    return nullptr;
  for (const Node* n : {r1, r2}) if (n->attr_int("allowzero", 0) != 0) return nullptr;
  *heads = h;
  m.nodes.push_back(r2);
  m.nodes.push_back(t);
  m.nodes.push_back(r1);
  return rs->inputs[0];
}

bool match(const Readers& r, Node* mm2, Match& m) {
  if (!is_op(mm2, "MatMul") || mm2->inputs.size() != 2) return false;
  // Output side: Transpose back, then the Reshape that is kept.
  Node* ot = r.only(mm2->outputs[0]);
  if (!is_op(ot, "Transpose") || !perm_is(ot, {0, 2, 1, 3})) return false;
  Node* y = r.only(ot->outputs[0]);
  if (!is_op(y, "Reshape") || y->inputs[0] != ot->outputs[0]) return false;
  const Shape& ys = y->outputs[0]->shape;
  if (ys.rank_known() && ys.rank() != 3) return false;
  // Probabilities: Softmax over the last axis, maybe NaN-cleaned.
  Value* p = mm2->inputs[0];
  Node* sm = p->producer;
  if (is_op(sm, "Where") && sm->inputs.size() == 3 && r.only(p) == mm2) {
    Node* where = sm;
    double zero;
    Node* isnan = where->inputs[0]->producer;
    if (!scalar_of(where->inputs[1], &zero) || zero != 0.0 || !is_op(isnan, "IsNaN")) return false;
    sm = where->inputs[2]->producer;
    if (!is_op(sm, "Softmax") || isnan->inputs[0] != sm->outputs[0] || r.only(isnan->outputs[0]) != where) return false;
    const auto& rd = r.all(sm->outputs[0]);
    if (rd.size() != 2 || r.graph_outputs.count(sm->outputs[0])) return false;
    m.nodes.push_back(where);
    m.nodes.push_back(isnan);
  } else if (!is_op(sm, "Softmax") || r.only(p) != mm2) {
    return false;
  }
  const int64_t axis = sm->attr_int("axis", sm->opset >= 13 ? -1 : 1);
  if (sm->opset < 13 || (axis != -1 && axis != 3)) return false;
  m.nodes.push_back(sm);
  // Scores: [Add(mask)] of [Div/Mul by a scalar] of MatMul.
  Value* s = sm->inputs[0];
  const Node* reader = sm;
  if (Node* add = producer_for(r, s, "Add", reader); add && add->inputs.size() == 2) {
    int si = -1;  // the scores side: MatMul, or its Div/Mul by the scale, read only by the Add
    for (int i = 0; i < 2 && si < 0; ++i)
      for (const char* op : {"MatMul", "Div", "Mul"})
        if (producer_for(r, add->inputs[i], op, add)) { si = i; break; }
    if (si < 0) return false;
    m.mask = add->inputs[1 - si];
    // An unknown rank is fine: the scores are 4-D (the head Transposes prove it), so the Add's
    // mask broadcasts to at most 4-D; kernels check the broadcast at run time.
    if (m.mask->shape.rank_known() && m.mask->shape.rank() > 4) return false;
    m.nodes.push_back(add);
    s = add->inputs[si];
    reader = add;
  }
  for (const char* op : {"Div", "Mul"}) {
    if (Node* sc = producer_for(r, s, op, reader); sc && sc->inputs.size() == 2) {
      double c;
      if (!scalar_of(sc->inputs[1], &c) || c == 0.0) return false;
      m.scale *= std::string(op) == "Div" ? 1.0 / c : c;
      m.nodes.push_back(sc);
      s = sc->inputs[0];
      reader = sc;
      break;
    }
  }
  Node* mm1 = producer_for(r, s, "MatMul", reader);
  if (!mm1 || mm1->inputs.size() != 2) return false;
  m.nodes.push_back(mm1);
  int64_t heads = 0;
  m.q = head_operand(r, mm1->inputs[0], mm1, {0, 2, 1, 3}, m, &heads);
  const size_t mark = m.nodes.size();
  const double scale = m.scale;
  m.k = m.q ? head_operand(r, mm1->inputs[1], mm1, {0, 2, 3, 1}, m, &heads) : nullptr;
  if (m.q && !m.k) {  // the dynamo exporter's K^T
    m.nodes.resize(mark);
    m.scale = scale;
    m.k = dynamo_key_operand(r, mm1->inputs[1], mm1, m, &heads);
  }
  // V: Transpose(Reshape(v)) read by the second MatMul.
  Node* vt = producer_for(r, mm2->inputs[1], "Transpose", mm2);
  Node* vr = vt && perm_is(vt, {0, 2, 1, 3}) ? producer_for(r, vt->inputs[0], "Reshape", vt) : nullptr;
  int64_t vh = 0, vd = 0;
  if (!m.q || !m.k || !vr || !splits_heads(vr, &vh, &vd) || vh != heads) return false;
  m.v = vr->inputs[0];
  m.nodes.push_back(vt);
  m.nodes.push_back(vr);
  m.nodes.push_back(ot);
  for (const Value* x : {m.q, m.k, m.v})
    if (x->dtype != DataType::kFloat32 || x->shape[2] != m.q->shape[2]) return false;
  if (m.mask && m.mask->dtype != DataType::kFloat32) return false;
  m.heads = heads;
  m.last_reshape = y;
  m.merged = merges_heads(y, m.q);
  if (m.merged) m.nodes.push_back(y);
  m.anchor = mm2;
  m.nodes.push_back(mm2);
  return true;
}

}  // namespace

Status fuse_attention(Graph& graph, PassContext& ctx) {
  if (ctx.reduced_precision != DataType::kFloat16 && ctx.reduced_precision != DataType::kBFloat16) return Status::ok();
  const Readers r(graph);
  std::map<Node*, std::unique_ptr<Node>> replace;  // the second MatMul -> Attention
  std::set<Node*> drop;
  int softmaxes = 0;
  for (const auto& np : graph.nodes()) {
    softmaxes += np->op_type == "Softmax";
    Match m;
    if (!match(r, np.get(), m)) continue;
    bool taken = false;
    for (Node* n : m.nodes) taken |= drop.count(n) != 0;
    if (taken) continue;
    Value* out = m.last_reshape->outputs[0];
    if (!m.merged) {
      KILN_ASSIGN_OR_RETURN(out, graph.add_value(m.anchor->outputs[0]->name + "/attention", DataType::kFloat32,
                                                 m.q->shape));
      m.last_reshape->inputs[0] = out;
    }
    auto a = std::make_unique<Node>();
    a->name = m.anchor->name + "/Attention";
    a->op_type = "Attention";
    a->opset = 23;
    a->inputs = {m.q, m.k, m.v};
    if (m.mask) a->inputs.push_back(m.mask);
    a->outputs = {out};
    a->attrs["q_num_heads"] = m.heads;
    a->attrs["kv_num_heads"] = m.heads;
    a->attrs["scale"] = float(m.scale);
    out->producer = a.get();
    for (Node* n : m.nodes) drop.insert(n);
    replace[m.anchor] = std::move(a);
  }
  const int fused = splice_fused(graph, replace, drop);
  if (fused) {
    KILN_RETURN_IF_ERROR(infer_graph(graph));
    KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph, ctx));  // the dynamo K^T's shape arithmetic
  }
  ctx.counters["fuse_attention.fused"] += fused;
  ctx.counters["fuse_attention.softmax_seen"] += softmaxes;  // fused < seen: some did not match
  return Status::ok();
}

}  // namespace kiln::passes
