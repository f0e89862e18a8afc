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
// Shape(%k4) (key_dynamo); the output Reshape by [-1, S, H*D].
//
// Where(IsNaN) is what the exporter adds for fully masked rows; Attention gives those rows zeros
// too. Each exporter's form is a rule of the rewrite driver (passes/rewrite): TorchScript's and
// dynamo's K^T are two rules over the same Q/V/scores/output patterns. Fires only with
// --fp16/--bf16 (ctx.reduced_precision): the fused kernels are tensor-core kernels for 16-bit
// types; float32 keeps the unfused TF32 GEMMs. Pre: types and shapes inferred, topological
// order. Post: the Attention node (and the kept Reshape after it) stands where the output
// Reshape stood (the rule's root). Fires only when every intermediate value is read only inside
// the pattern and is not a graph output, Q, K and V are 3-D [B, S, H*D] with a static last dim, and each head Reshape
// provably splits [B, S, H*D] into [B, S, H, D] (constant H and D, one of them may be -1; B and
// S copied: 0, or known by shape inference to be B and S). Must not fire: other perms, a shared intermediate, fp32.
#include <algorithm>
#include <cmath>

#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

// Whether element i of Reshape rs's target t gives dim i of x: a 0 that copies it (allowzero = 0)
// or, as shape inference knows the element (a constant, or Shape/Gather/Concat arithmetic:
// Value::dims_value), the same number or symbol.
bool copies(const Node* rs, const std::vector<Dim>& t, size_t i, const Value* x) {
  if (t[i].is_static() && t[i].value() == 0 && rs->attr_int("allowzero", 0) == 0) return true;
  return t[i].is_known() && t[i] == x->shape[i];
}

// Whether elements 0 and 1 of t give x's dims 0 and 1, the rest being `fixed` (known numbers): both
// copied, or one copied and the other -1 (the element count then makes it the copied dim's twin).
bool leading_two(const Node* rs, const std::vector<Dim>& t, const Value* x, bool fixed) {
  const bool c0 = copies(rs, t, 0, x), c1 = copies(rs, t, 1, x);
  auto minus_one = [&](size_t i) { return t[i].is_static() && t[i].value() == -1; };
  return (c0 && c1) || (fixed && ((c1 && minus_one(0)) || (c0 && minus_one(1))));
}

// Whether Reshape node rs turns x [B, S, H*D] into [B, S, H, D]; sets heads and head size.
bool splits_heads(const Node* rs, int64_t* heads, int64_t* head) {
  if (rs->inputs.size() != 2) return false;
  const Value* x = rs->inputs[0];
  auto t = dims_value_of(rs->inputs[1]);
  if (!t || t->size() != 4 || !x->shape.rank_known() || x->shape.rank() != 3 || !x->shape[2].is_static()) return false;
  if (!(*t)[2].is_static() || !(*t)[3].is_static()) return false;
  int64_t h = (*t)[2].value(), d = (*t)[3].value();
  const bool fixed = h > 0 && d > 0;
  const int64_t e = x->shape[2].value();  // one of H, D may be -1 (transformers' view(B, S, -1, D))
  if (h == -1 && d > 0 && e % d == 0) h = e / d;
  if (d == -1 && h > 0 && e % h == 0) d = e / h;
  if (h <= 0 || d <= 0 || h * d != e || !leading_two(rs, *t, x, fixed)) return false;
  *heads = h;
  *head = d;
  return true;
}

// Whether Reshape node y turns x's [B, S, H*D]-shaped twin back into exactly x's shape: target
// [0 | B, 0 | S, H*D | -1] (one of B, S may be -1 when H*D is given).
bool merges_heads(const Node* y, const Value* x) {
  if (y->inputs.size() != 2 || !x->shape.rank_known() || x->shape.rank() != 3 || !x->shape[2].is_static()) return false;
  auto t = dims_value_of(y->inputs[1]);
  if (!t || t->size() != 3 || !(*t)[2].is_static()) return false;
  const int64_t last = (*t)[2].value(), e = x->shape[2].value();
  return (last == e || last == -1) && leading_two(y, *t, x, last == e);
}

bool head_split(const Node& n) {
  int64_t h, d;
  return splits_heads(&n, &h, &d);
}

// [Mul by a scalar (captured as `scale`)] of p.
Pattern scaled(Pattern p, const std::string& scale) {
  return maybe(std::move(p), [&](Pattern x) { return op("Mul", {std::move(x), scalar().as(scale)}).commutative(); });
}

// Transpose(perm) of a head Reshape of %name ([B, S, H*D] -> [B, S, H, D]); the Reshape
// captured as name + "_heads".
Pattern heads(const std::string& name, std::vector<int64_t> perm) {
  return op("Transpose", {op("Reshape", {any().as(name), any()}).where_node(head_split).as(name + "_heads")})
      .attr("perm", std::move(perm));
}

// Slice(Shape(%k4), start, end) with no axes nor steps, [start, end) normalized as Python's
// slices are (the dynamo exporter's `k.shape[-2:-1]` and friends).
Pattern k4_dims(int64_t start, int64_t end) {
  auto norm = [](double x) { return int64_t(std::max(0.0, std::min(4.0, x < 0 ? x + 4 : x))); };
  auto at = [norm](int64_t want) {
    return scalar().where([=](const Value& v) { return norm(v.initializer->get_as_double(0)) == want; });
  };
  return op("Slice", {op("Shape", {any().as("k4")}).attr("start", 0, 0).where_node([](const Node& n) {
                        return !n.has_attr("end");
                      }),
                      at(start), at(end), absent(), absent()});
}

// K^T, [scaled]: TorchScript's Transpose(Reshape(k), [0, 2, 3, 1]), or dynamo's
// Reshape(Transpose(Reshape(k4, [-1, S, D]), [0, 2, 1]), [B, H, D, S]) with both targets cut
// from Shape(k4), where k4 = Transpose(Reshape(k, [B, S, H, D]), [0, 2, 1, 3]): the same values.
// k4 and the shape arithmetic are kept (its Shapes read it too): dead-node elimination takes them.
Pattern key_torchscript() { return scaled(heads("k", {0, 2, 3, 1}), "k_scale"); }
Pattern key_dynamo() {
  Pattern k4 = heads("k", {0, 2, 1, 3}).as("k4").where([](const Value& v) { return v.shape.rank_known() && v.shape.rank() == 4; });
  Pattern c1 = op("Concat", {scalar(-1.0), k4_dims(2, 3), k4_dims(3, 4)});  // [-1, S, D]
  Pattern c2 = op("Concat", {k4_dims(0, 2), k4_dims(3, 4), k4_dims(2, 3)});  // [B, H, D, S]
  Pattern r1 = op("Reshape", {k4.keep(), c1.keep()}).attr("allowzero", 0, 0);
  return scaled(op("Reshape", {op("Transpose", {r1}).attr("perm", {0, 2, 1}), c2.keep()}).attr("allowzero", 0, 0), "k_scale");
}

// Reshape(Transpose(MatMul(probs, V), [0, 2, 1, 3])) where probs = Softmax(scores over the last
// axis) [NaN-cleaned by Where(IsNaN)], scores = MatMul(Q, K^T) [Div | Mul by a scalar] [+ mask].
Pattern attention(Pattern key) {
  Pattern qk = op("MatMul", {scaled(heads("q", {0, 2, 1, 3}), "q_scale"), std::move(key)});
  Pattern scores = either({op("Div", {qk, scalar().as("div")}), op("Mul", {qk, scalar().as("mul")}), qk});
  // An unknown mask rank is fine: the scores are 4-D (the head Transposes prove it), so the
  // mask broadcasts to at most 4-D; kernels check the broadcast at run time.
  Pattern masked = maybe(scores, [](Pattern s) {
    return op("Add", {std::move(s), any().as("mask").where([](const Value& m) {
                        return !m.shape.rank_known() || m.shape.rank() <= 4;
                      })}).commutative();
  });
  Pattern softmax = op("Softmax", {masked}).where_node([](const Node& n) {
    const int64_t axis = n.attr_int("axis", n.opset >= 13 ? -1 : 1);
    return n.opset >= 13 && (axis == -1 || axis == 3);
  });
  Pattern probs = either({op("Where", {op("IsNaN", {softmax.as("sm")}), scalar(0.0), any().as("sm")}), softmax});
  Pattern out = op("Transpose", {op("MatMul", {probs, heads("v", {0, 2, 1, 3})}).as("mm2")}).attr("perm", {0, 2, 1, 3});
  return op("Reshape", {out, any()}).where_node([](const Node& y) {
    const Shape& ys = y.outputs[0]->shape;
    return !ys.rank_known() || ys.rank() == 3;
  });
}

bool fuse(const Match& m, Rewriter& rw) {
  Value *q = m["q"], *k = m["k"], *v = m["v"], *mask = m["mask"];
  int64_t heads = 0, hk = 0, hv = 0, d;
  if (!splits_heads(m.node("q_heads"), &heads, &d) || !splits_heads(m.node("k_heads"), &hk, &d) || hk != heads ||
      !splits_heads(m.node("v_heads"), &hv, &d) || hv != heads)
    return false;
  for (const Value* x : {q, k, v})
    if (x->dtype != DataType::kFloat32 || x->shape[2] != q->shape[2]) return false;
  if (mask && mask->dtype != DataType::kFloat32) return false;
  double scale = 1.0;
  if (const Value* c = m["div"] ? m["div"] : m["mul"]) {
    const double x = c->initializer->get_as_double(0);
    if (x == 0.0) return false;
    scale *= m["div"] ? 1.0 / x : x;
  }
  for (const char* s : {"q_scale", "k_scale"})
    if (m[s]) scale *= m[s]->initializer->get_as_double(0);
  const Node *mm2 = m.node("mm2"), *y = m.root;
  // The output Reshape goes when it only merges the heads back; else it reads the Attention.
  const bool merged = merges_heads(y, q);
  Value* out = y->outputs[0];
  if (!merged) {
    auto made = rw.value(mm2->outputs[0]->name + "/attention", DataType::kFloat32, q->shape);
    if (!made) return false;
    out = *made;
  }
  std::vector<Value*> in = {q, k, v};
  if (mask) in.push_back(mask);
  Node* a = merged ? rw.replace_root("Attention", "", in, {}, {}, mm2->name + "/Attention")
                   : rw.add("Attention", "", in, {out}, mm2->name + "/Attention");
  a->opset = 23;
  a->attrs["q_num_heads"] = heads;
  a->attrs["kv_num_heads"] = heads;
  a->attrs["scale"] = float(scale);
  if (!merged) rw.replace_root_with_copy()->inputs[0] = out;
  return true;
}

}  // namespace

Status fuse_attention(Graph& graph, PassContext& ctx) {
  if (ctx.reduced_precision != DataType::kFloat16 && ctx.reduced_precision != DataType::kBFloat16) return Status::ok();
  static const Rule kRules[] = {
      {"torchscript", attention(key_torchscript()), fuse},
      {"dynamo", attention(key_dynamo()), fuse},
  };
  int softmaxes = 0;
  for (const auto& n : graph.nodes()) softmaxes += n->op_type == "Softmax";
  KILN_ASSIGN_OR_RETURN(int fused, rewrite::apply(graph, ctx, "fuse_attention", kRules));
  if (fused) {
    KILN_RETURN_IF_ERROR(infer_graph(graph));
    KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph, ctx));  // the dynamo K^T's shape arithmetic
  }
  ctx.counters["fuse_attention.fused"] += fused;
  ctx.counters["fuse_attention.softmax_seen"] += softmaxes;  // fused < seen: some did not match
  return Status::ok();
}

}  // namespace kiln::passes
