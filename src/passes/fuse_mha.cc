// fuse_mha: multi-head self-attention on one packed QKV projection, kiln.PackedAttention.
//
// 1. torchvision's nn.MultiheadAttention (ViT), as both exporters write it (sequence-first inside):
//     %xt = Transpose(%x, [1,0,2])  %p = Add(MatMul(%xt, %Win [E,3E]), %bin)         [S,B,3E]
//     %u  = Transpose(Unsqueeze(Reshape(%p, [S,B,3,E]), [0]), [3,1,2,0,4])  %sq = Squeeze(%u, [3])
//     q|k|v = Gather(%sq, 0|1|2)  -> Reshape [S,B*H,D] -> Transpose [1,0,2] -> Reshape [B,H,S,D]
//     K^T: Transpose [0,1,3,2] (TorchScript) or Reshape [-1,S,D], Transpose [0,2,1], Reshape
//     [B,H,D,S] (dynamo); [Mul by scalars] on Q and K^T; Softmax(MatMul(q, k^T)); MatMul(., v)
//     -> Transpose [2,0,1,3] -> Reshape [S*B,E] -> Gemm(W_out, b_out) -> Reshape [S,B,E]
//     -> %y = Transpose [1,0,2]
//   after (batch-first; fuse_matmul_bias then folds the Adds):
//     %qkv = Add(MatMul(%x, %Win), %bin)   %a = kiln.PackedAttention(%qkv) {num_heads, scale}
//     %y = Add(MatMul(%a, W_out^T), b_out)           (b_out zeros when the Gemm has none)
// 2. BERT, after fuse_attention: Attention(q, k, v, [mask]) (3-D) whose q, k, v are each
//    Add(MatMul(%x, W const), b const) of the same %x becomes
//    kiln.PackedAttention(Add(MatMul(%x, concat(Wq, Wk, Wv)), concat(bq, bk, bv)), [mask]).
//
// Every Reshape target, a constant with 0/-1 or Shape/Gather/Slice/Concat/Mul/Div arithmetic, is
// evaluated symbolically (shape_prover.h) and must give exactly the split/merge above; perms,
// axes and Gather indices must be exactly these. The scale comes from the Q/K Muls' scalars
// (constants, or the TorchScript exporter's Shape -> Cast -> Sqrt arithmetic on the head size).
// Fires only with --fp16/--bf16 (ctx.reduced_precision, as fuse_attention) on float32 graphs,
// for a backend with a PackedAttention kernel (ctx.has_kernel), and only when every intermediate
// is read inside the pattern (Shape readers excepted) and is no graph output. Pre: types and
// shapes inferred, topological order. Post: the new nodes stand where the final Transpose (ViT)
// or the Attention (BERT) stood; the old nodes go as dead code.
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "ir/op_registry.h"
#include "passes/pattern.h"
#include "passes/shape_prover.h"
#include "passes/pipeline.h"

namespace kiln::passes {

namespace {

bool is_op(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op && n->outputs.size() == 1; }

// v is read by `next` (and maybe by Shape nodes, which go with the dead code), by nothing else,
// and is no graph output.
bool internal(const Readers& r, const Value* v, const Node* next) {
  if (!v || r.graph_outputs.count(v)) return false;
  bool seen = false;
  for (const Node* n : r.all(v)) {
    if (n == next) seen = true;
    else if (!is_op(n, "Shape")) return false;
  }
  return seen;
}

// The producer of v if it is `op` and v is internal to the pattern, read by `next`.
Node* from(const Readers& r, const Value* v, const char* op, const Node* next) {
  Node* p = v ? v->producer : nullptr;
  return is_op(p, op) && internal(r, v, next) ? p : nullptr;
}

bool perm_is(const Node* t, std::vector<int64_t> p) { return t && t->attr_ints("perm") == p; }

bool dims_are(ShapeProver& sp, const Value* v, const Dims& want) {
  auto d = sp.dims_of(v);
  return d && *d == want;
}

// A constant float32 initializer of the given dims.
const Tensor* weight(const Value* v, std::vector<int64_t> dims) {
  return v && v->initializer && v->dtype == DataType::kFloat32 && v->initializer->dims() == dims ? v->initializer
                                                                                                 : nullptr;
}

struct Mha {
  Node* anchor = nullptr;  // the final Transpose
  Value *x = nullptr, *w_in = nullptr, *b_in = nullptr, *b_out = nullptr;
  Value* w_out_value = nullptr;  // the Gemm's B
  const Tensor* w_out = nullptr;
  bool w_out_transposed = false;  // Gemm transB = 1: W_out is [out, in]
  int64_t heads = 0;
  double scale = 1.0;
};

// [Mul by a scalar] of v: folds the scalar into *scale, returns the Mul's other operand.
Value* strip_mul(const Readers& r, ShapeProver& sp, Value* v, const Node* next, double* scale) {
  Node* m = from(r, v, "Mul", next);
  if (!m || m->inputs.size() != 2) return v;
  for (int c = 0; c < 2; ++c)
    if (auto s = sp.number(m->inputs[size_t(c)])) {
      *scale *= *s;
      return m->inputs[size_t(1 - c)];
    }
  return nullptr;
}

// One head operand v4: Reshape [B,H,S,D] of Transpose [1,0,2] of Reshape [S,B*H,D] of
// Gather(sq, index), every value internal. Sets *heads (H = E / D), or checks it on later calls.
bool head_chain(const Readers& r, ShapeProver& sp, Value* v4, const Node* next, const Value* sq, int64_t index,
                const Term& s, const Term& b, int64_t e, int64_t* heads) {
  Node* r4 = from(r, v4, "Reshape", next);
  Node* t = r4 ? from(r, r4->inputs[0], "Transpose", r4) : nullptr;
  Node* r3 = t && perm_is(t, {1, 0, 2}) ? from(r, t->inputs[0], "Reshape", t) : nullptr;
  Node* g = r3 ? from(r, r3->inputs[0], "Gather", r3) : nullptr;
  if (!g || g->inputs.size() != 2 || g->inputs[0] != sq || g->attr_int("axis", 0) != 0) return false;
  if (!g->inputs[1]->initializer || !g->inputs[1]->initializer->dims().empty() || ints_of(g->inputs[1])[0] != index)
    return false;
  auto d3 = sp.dims_of(r3->outputs[0]);
  if (!d3 || d3->size() != 3 || !(*d3)[2].root.empty() || (*d3)[2].coef <= 0 || e % (*d3)[2].coef) return false;
  const int64_t d = (*d3)[2].coef, h = e / d;
  if (*heads && *heads != h) return false;
  *heads = h;
  auto bh = mul(b, Term{h, ""});
  return bh && *d3 == Dims{s, *bh, Term{d, ""}} && dims_are(sp, r4->outputs[0], Dims{b, Term{h, ""}, s, Term{d, ""}});
}

bool match_vit(const Readers& r, ShapeProver& sp, Node* tf, Mha& m) {
  if (!is_op(tf, "Transpose") || !perm_is(tf, {1, 0, 2}) || tf->inputs.size() != 1) return false;
  // Output side: Reshape [S,B,E] of Gemm of Reshape [S*B,E] of Transpose [2,0,1,3] of MatMul(probs, v).
  Node* ro = from(r, tf->inputs[0], "Reshape", tf);
  Node* gemm = ro ? from(r, ro->inputs[0], "Gemm", ro) : nullptr;
  if (!gemm || gemm->inputs.size() < 2 || gemm->attr_int("transA", 0) != 0 || gemm->attr_float("alpha", 1.f) != 1.f ||
      gemm->attr_float("beta", 1.f) != 1.f)
    return false;
  Node* ra = from(r, gemm->inputs[0], "Reshape", gemm);
  Node* to = ra ? from(r, ra->inputs[0], "Transpose", ra) : nullptr;
  Node* mm2 = to && perm_is(to, {2, 0, 1, 3}) ? from(r, to->inputs[0], "MatMul", to) : nullptr;
  Node* sm = mm2 ? from(r, mm2->inputs[0], "Softmax", mm2) : nullptr;
  if (!sm || sm->opset < 13 || (sm->attr_int("axis", -1) != -1 && sm->attr_int("axis", -1) != 3)) return false;
  Node* mm1 = from(r, sm->inputs[0], "MatMul", sm);
  if (!mm1) return false;
  // Input side: the packed projection and its split into [3, S, B, E].
  Value* v4 = mm2->inputs[1];
  const Node* rv = v4->producer;
  const Node* tv = rv && is_op(rv, "Reshape") ? rv->inputs[0]->producer : nullptr;
  const Node* r3v = tv && is_op(tv, "Transpose") ? tv->inputs[0]->producer : nullptr;
  const Node* gv = r3v && is_op(r3v, "Reshape") ? r3v->inputs[0]->producer : nullptr;
  if (!is_op(gv, "Gather")) return false;
  Value* sqv = gv->inputs[0];
  Node* sq = sqv->producer;
  if (!is_op(sq, "Squeeze") || sq->inputs.size() != 2) return false;
  const auto sq_axes = ints_of(sq->inputs[1]);
  if (sq_axes != std::vector<int64_t>{3} && sq_axes != std::vector<int64_t>{-2}) return false;
  int gathers = 0;
  for (const Node* n : r.all(sqv)) {
    if (is_op(n, "Gather")) ++gathers;
    else if (!is_op(n, "Shape")) return false;
  }
  if (gathers != 3 || r.graph_outputs.count(sqv)) return false;
  Node* t5 = from(r, sq->inputs[0], "Transpose", sq);
  Node* un = t5 && perm_is(t5, {3, 1, 2, 0, 4}) ? from(r, t5->inputs[0], "Unsqueeze", t5) : nullptr;
  if (!un || un->inputs.size() != 2 || ints_of(un->inputs[1]) != std::vector<int64_t>{0}) return false;
  Node* r2 = from(r, un->inputs[0], "Reshape", un);
  Node* add = r2 ? from(r, r2->inputs[0], "Add", r2) : nullptr;
  if (!add || add->inputs.size() != 2) return false;
  const int bi = add->inputs[0]->initializer ? 0 : 1;
  Node* mm = from(r, add->inputs[1 - bi], "MatMul", add);
  Node* xt = mm && mm->inputs.size() == 2 ? mm->inputs[0]->producer : nullptr;
  if (!is_op(xt, "Transpose") || !perm_is(xt, {1, 0, 2})) return false;
  m.x = xt->inputs[0];
  m.w_in = mm->inputs[1];
  m.b_in = add->inputs[size_t(bi)];
  if (m.x->dtype != DataType::kFloat32 || !m.x->shape.rank_known() || m.x->shape.rank() != 3 ||
      !m.x->shape[2].is_static())
    return false;
  const int64_t e = m.x->shape[2].value();
  if (!weight(m.w_in, {e, 3 * e}) || !weight(m.b_in, {3 * e})) return false;
  // The dims of the sequence-first input, as every target must name them.
  auto xd = sp.dims_of(xt->outputs[0]);
  if (!xd || xd->size() != 3) return false;
  const Term s = (*xd)[0], b = (*xd)[1], et{e, ""};
  if (!dims_are(sp, r2->outputs[0], Dims{s, b, Term{3, ""}, et})) return false;
  // Q, K, V: Gather 0, 1, 2, each down its head chain; the scalar Muls on Q and K^T.
  double scale = 1.0;
  Value* q4 = strip_mul(r, sp, mm1->inputs[0], mm1, &scale);
  const Node* k_reader = mm1;
  Value* kt = mm1->inputs[1];
  if (Node* km = from(r, kt, "Mul", mm1)) {
    kt = strip_mul(r, sp, kt, mm1, &scale);
    k_reader = km;
  }
  if (!q4 || !kt) return false;
  Value* k4 = nullptr;
  Node* ktn = from(r, kt, "Transpose", k_reader);
  if (ktn && perm_is(ktn, {0, 1, 3, 2})) {
    k4 = ktn->inputs[0];
    k_reader = ktn;
  } else if (Node* kr2 = from(r, kt, "Reshape", k_reader)) {  // the dynamo exporter's K^T
    Node* kt3 = from(r, kr2->inputs[0], "Transpose", kr2);
    Node* kr1 = kt3 && perm_is(kt3, {0, 2, 1}) ? from(r, kt3->inputs[0], "Reshape", kt3) : nullptr;
    if (!kr1) return false;
    auto d4 = sp.dims_of(kr1->inputs[0]);
    if (!d4 || d4->size() != 4) return false;
    auto bh = mul((*d4)[0], (*d4)[1]);
    if (!bh || !dims_are(sp, kr1->outputs[0], Dims{*bh, (*d4)[2], (*d4)[3]}) ||
        !dims_are(sp, kr2->outputs[0], Dims{(*d4)[0], (*d4)[1], (*d4)[3], (*d4)[2]}))
      return false;
    k4 = kr1->inputs[0];
    k_reader = kr1;
  }
  if (!k4) return false;
  int64_t heads = 0;
  if (!head_chain(r, sp, q4, q4 == mm1->inputs[0] ? mm1 : mm1->inputs[0]->producer, sqv, 0, s, b, e, &heads) ||
      !head_chain(r, sp, k4, k_reader, sqv, 1, s, b, e, &heads) || !head_chain(r, sp, v4, mm2, sqv, 2, s, b, e, &heads))
    return false;
  // Output side dims: [S*B, E] into the Gemm, [S, B, E] out of it.
  auto sb = mul(s, b);
  if (!sb || !dims_are(sp, ra->outputs[0], Dims{*sb, et}) || !dims_are(sp, ro->outputs[0], Dims{s, b, et})) return false;
  m.w_out_transposed = gemm->attr_int("transB", 0) != 0;
  m.w_out_value = gemm->inputs[1];
  m.w_out = weight(gemm->inputs[1], {e, e});
  if (!m.w_out) return false;
  if (gemm->inputs.size() > 2 && gemm->inputs[2]) {
    m.b_out = gemm->inputs[2];
    if (!weight(m.b_out, {e})) return false;
  }
  m.anchor = tf;
  m.heads = heads;
  m.scale = scale;
  return true;
}

struct Bert {
  Node* anchor = nullptr;  // the Attention
  Value *x = nullptr, *mask = nullptr;
  const Tensor *w[3] = {}, *b[3] = {};
};

bool match_bert(const Readers& r, Node* at, Bert& m) {
  if (!at || !at->domain.empty() || at->op_type != "Attention" || at->inputs.size() < 3 || at->inputs.size() > 4)
    return false;
  for (size_t i = 1; i < at->outputs.size(); ++i) if (at->outputs[i]) return false;
  const int64_t h = at->attr_int("q_num_heads", 0);
  if (h <= 0 || at->attr_int("kv_num_heads", 0) != h || at->attr_int("is_causal", 0) != 0 ||
      at->attr_float("softcap", 0.f) != 0.f || at->has_attr("softmax_precision") ||
      at->attr_int("qk_matmul_output_mode", 0) != 0 || at->has_attr("left_window_size") || at->has_attr("right_window_size"))
    return false;
  for (int i = 0; i < 3; ++i) {
    Value* v = at->inputs[size_t(i)];
    for (int j = 0; j < i; ++j) if (at->inputs[size_t(j)] == v) return false;
    if (!v || v->dtype != DataType::kFloat32 || !v->shape.rank_known() || v->shape.rank() != 3 || !v->shape[2].is_static())
      return false;
    const int64_t e = v->shape[2].value();
    Node* add = r.only(v) == at ? v->producer : nullptr;
    if (!is_op(add, "Add") || add->inputs.size() != 2) return false;
    const int bi = add->inputs[0]->initializer ? 0 : 1;
    Node* mm = add->inputs[size_t(1 - bi)]->producer;
    if (!is_op(mm, "MatMul") || r.only(mm->outputs[0]) != add || mm->inputs.size() != 2) return false;
    m.b[i] = weight(add->inputs[size_t(bi)], {e});
    m.w[i] = weight(mm->inputs[1], {e, e});
    if (!m.b[i] || !m.w[i] || (i > 0 && (mm->inputs[0] != m.x || e != m.w[0]->dims()[0]))) return false;
    m.x = mm->inputs[0];
  }
  if (at->inputs.size() == 4 && at->inputs[3]) {
    m.mask = at->inputs[3];
    if (m.mask->dtype != DataType::kFloat32) return false;
  }
  m.anchor = at;
  return true;
}

// Builds the new nodes of one rewrite.
struct Builder {
  Graph& g;
  std::vector<std::unique_ptr<Node>> nodes;
  Expected<Value*> node(const std::string& name, const char* op, std::vector<Value*> in, Value* out = nullptr,
                        const char* domain = "") {
    if (!out) {
      KILN_ASSIGN_OR_RETURN(out, g.add_value(name, DataType::kFloat32));
    }
    auto n = std::make_unique<Node>();
    n->name = name;
    n->op_type = op;
    n->domain = domain;
    n->opset = domain[0] ? 1 : g.opsets.count("") ? g.opsets.at("") : 17;
    n->inputs = std::move(in);
    n->outputs = {out};
    out->producer = n.get();
    nodes.push_back(std::move(n));
    return out;
  }
  Node* last() { return nodes.back().get(); }
};

// Cat of float32 tensors along their last axis (same leading dims).
Expected<Tensor> concat_last(const std::vector<const Tensor*>& parts) {
  std::vector<int64_t> dims = parts[0]->dims();
  int64_t total = 0;
  for (const Tensor* t : parts) total += t->dims().back();
  const int64_t rows = parts[0]->numel() / parts[0]->dims().back();
  dims.back() = total;
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(DataType::kFloat32, dims));
  float* o = out.mutable_data<float>();
  for (int64_t i = 0; i < rows; ++i)
    for (const Tensor* t : parts) {
      const int64_t n = t->dims().back();
      const float* src = t->data<float>() + i * n;
      o = std::copy(src, src + n, o);
    }
  return out;
}

}  // namespace

Status fuse_mha(Graph& graph, PassContext& ctx) {
  if (ctx.reduced_precision != DataType::kFloat16 && ctx.reduced_precision != DataType::kBFloat16) return Status::ok();
  if (ctx.has_kernel && !ctx.has_kernel("kiln", "PackedAttention")) {  // would run as a CPU fallback
    ctx.counters["fuse_mha.no_backend_kernel"] = 1;
    return Status::ok();
  }
  const Readers r(graph);
  ShapeProver sp;
  std::vector<Mha> vits;
  std::vector<Bert> berts;
  for (const auto& np : graph.nodes()) {
    Mha m;
    if (match_vit(r, sp, np.get(), m)) vits.push_back(m);
    Bert b;
    if (match_bert(r, np.get(), b)) berts.push_back(b);
  }
  std::map<Node*, std::vector<std::unique_ptr<Node>>> replace;
  for (const Mha& m : vits) {
    Builder bld{graph, {}};
    const std::string p = m.anchor->outputs[0]->name + "/mha";  // value names are unique
    Value* y = m.anchor->outputs[0];
    KILN_ASSIGN_OR_RETURN(Value * proj, bld.node(p + "/in_proj", "MatMul", {m.x, m.w_in}));
    KILN_ASSIGN_OR_RETURN(Value * qkv, bld.node(p + "/qkv", "Add", {proj, m.b_in}));
    KILN_ASSIGN_OR_RETURN(Value * a, bld.node(p + "/attention", "PackedAttention", {qkv}, nullptr, "kiln"));
    bld.last()->attrs["num_heads"] = m.heads;
    bld.last()->attrs["scale"] = float(m.scale);
    const int64_t e = m.w_out->dims()[0];
    Value* w = nullptr;
    if (m.w_out_transposed) {  // Gemm's transB: the MatMul wants W_out^T
      KILN_ASSIGN_OR_RETURN(Tensor wt, Tensor::zeros(DataType::kFloat32, {e, e}));
      for (int64_t i = 0; i < e; ++i)
        for (int64_t j = 0; j < e; ++j) wt.mutable_data<float>()[j * e + i] = m.w_out->data<float>()[i * e + j];
      KILN_ASSIGN_OR_RETURN(w, graph.add_initializer(p + "/out_proj_weight_t", std::move(wt)));
    } else {
      w = m.w_out_value;  // the Gemm's B, as is
    }
    Value* bias = m.b_out;
    if (!bias) {  // (the dynamo exporter's Gemm has none) zeros: fuse_matmul_bias then folds the residual Add too
      KILN_ASSIGN_OR_RETURN(Tensor zero, Tensor::zeros(DataType::kFloat32, {e}));
      KILN_ASSIGN_OR_RETURN(bias, graph.add_initializer(p + "/out_proj_bias_zero", std::move(zero)));
    }
    KILN_ASSIGN_OR_RETURN(Value * out, bld.node(p + "/out_proj", "MatMul", {a, w}));
    KILN_RETURN_IF_ERROR(bld.node(p + "/out_proj_bias", "Add", {out, bias}, y).status());
    replace[m.anchor] = std::move(bld.nodes);
  }
  for (const Bert& m : berts) {
    Builder bld{graph, {}};
    const std::string p = m.anchor->outputs[0]->name + "/packed";
    KILN_ASSIGN_OR_RETURN(Tensor w, concat_last({m.w[0], m.w[1], m.w[2]}));
    KILN_ASSIGN_OR_RETURN(Tensor b, concat_last({m.b[0], m.b[1], m.b[2]}));
    KILN_ASSIGN_OR_RETURN(Value * wv, graph.add_initializer(p + "/qkv_weight", std::move(w)));
    KILN_ASSIGN_OR_RETURN(Value * bv, graph.add_initializer(p + "/qkv_bias", std::move(b)));
    KILN_ASSIGN_OR_RETURN(Value * proj, bld.node(p + "/qkv_proj", "MatMul", {m.x, wv}));
    KILN_ASSIGN_OR_RETURN(Value * qkv, bld.node(p + "/qkv", "Add", {proj, bv}));
    std::vector<Value*> in = {qkv};
    if (m.mask) in.push_back(m.mask);
    KILN_RETURN_IF_ERROR(bld.node(p, "PackedAttention", in, m.anchor->outputs[0], "kiln").status());
    bld.last()->attrs["num_heads"] = m.anchor->attr_int("q_num_heads", 0);
    if (m.anchor->has_attr("scale")) bld.last()->attrs["scale"] = m.anchor->attr_float("scale", 1.f);
    replace[m.anchor] = std::move(bld.nodes);
  }
  if (!replace.empty()) {
    auto& nodes = graph.mutable_nodes();
    std::vector<std::unique_ptr<Node>> kept;
    for (auto& n : nodes) {
      auto it = replace.find(n.get());
      if (it == replace.end()) {
        kept.push_back(std::move(n));
        continue;
      }
      for (auto& made : it->second) kept.push_back(std::move(made));
    }
    nodes = std::move(kept);
    KILN_RETURN_IF_ERROR(infer_graph(graph));
    KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph, ctx));
  }
  ctx.counters["fuse_mha.vit"] += int(vits.size());
  ctx.counters["fuse_mha.bert"] += int(berts.size());
  return Status::ok();
}

}  // namespace kiln::passes
