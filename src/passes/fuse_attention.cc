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
// S copied: 0, or read from a value with the same dims). Must not fire: other perms, a shared intermediate, fp32.
#include <algorithm>
#include <cmath>

#include "ir/op_registry.h"
#include "passes/pattern.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

// Unsqueeze(Gather(Shape(%y), %k)): one dim of %y as a 1-element tensor.
const Pattern& dim_of_shape() {
  static const Pattern p = op("Unsqueeze", {op("Gather", {op("Shape", {any().as("y")}).where_node([](const Node& n) {
                                                            return !n.has_attr("start") && !n.has_attr("end");
                                                          }),
                                                          scalar().as("k")}),
                                            any().optional()});
  return p;
}

// Element i (0 or 1) of a head Reshape's shape: proves it is dim i of x ([B, S, H*D]), as the
// same known dim or as a dim x carries from the value whose Shape it reads (keeps_leading_dims).
bool copies_dim(Value* elem, int64_t i, const Value* x, int64_t idx) {
  if (!elem) return false;
  if (elem->initializer) {
    const int64_t v = int64_t(elem->initializer->get_as_double(idx));
    return v == 0 || (x->shape[i].is_static() && v == x->shape[i].value());
  }
  Match m;
  if (!match_value(elem, dim_of_shape(), m)) return false;
  const double k = m["k"]->initializer->get_as_double(0);
  const Shape& ys = m["y"]->shape;
  if (!ys.rank_known() || k < 0 || int64_t(k) >= int64_t(ys.rank())) return false;
  return same_dim(ys[size_t(k)], x->shape[i]) || (int64_t(k) == i && keeps_leading_dims(x, m["y"], size_t(i)));
}

// A constant Reshape target's zeros copy the input's dims (allowzero = 0); with allowzero = 1
// (the dynamo exporter) a target without zeros means the same.
bool zeros_copy(const Node* rs, const Tensor& target) {
  if (rs->attr_int("allowzero", 0) == 0) return true;
  for (int64_t i = 0; i < target.numel(); ++i) if (target.get_as_double(i) == 0) return false;
  return true;
}

// Concat(axis 0) of n elements, each captured as e0, e1, ...
Pattern concat_of(int n, std::vector<Pattern> tail = {}) {
  std::vector<Pattern> in;
  for (int i = 0; i < n; ++i) in.push_back(any().as("e" + std::to_string(i)));
  for (Pattern& p : tail) in.push_back(std::move(p));
  return op("Concat", std::move(in)).attr("axis", 0, 0);
}

// Whether Reshape node rs turns x [B, S, H*D] into [B, S, H, D]; sets heads and head size.
bool splits_heads(const Node* rs, int64_t* heads, int64_t* head) {
  if (rs->inputs.size() != 2) return false;
  Value *x = rs->inputs[0], *shape = rs->inputs[1];
  if (!x->shape.rank_known() || x->shape.rank() != 3 || !x->shape[2].is_static()) return false;
  int64_t h = 0, d = 0;
  if (shape->initializer) {
    if (shape->initializer->numel() != 4 || !zeros_copy(rs, *shape->initializer)) return false;
    h = int64_t(shape->initializer->get_as_double(2));
    d = int64_t(shape->initializer->get_as_double(3));
    // The dynamo exporter's [-1, S, H, D]: with S, H and D fixed, -1 is the batch.
    const bool batch_inferred = shape->initializer->get_as_double(0) == -1 && h > 0 && d > 0;
    if (!(batch_inferred || copies_dim(shape, 0, x, 0)) || !copies_dim(shape, 1, x, 1)) return false;
  } else {
    static const Pattern target = concat_of(2, {scalar().as("h"), scalar().as("d")});
    Match c;
    if (rs->attr_int("allowzero", 0) != 0 || !match_value(shape, target, c)) return false;
    h = int64_t(c["h"]->initializer->get_as_double(0));
    d = int64_t(c["d"]->initializer->get_as_double(0));
    if (!copies_dim(c["e0"], 0, x, 0) || !copies_dim(c["e1"], 1, x, 0)) return false;
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
  Value* shape = y->inputs[1];
  const int64_t e = x->shape[2].value();
  if (shape->initializer) {
    const Tensor& t = *shape->initializer;
    if (t.numel() != 3 || !zeros_copy(y, t)) return false;
    const int64_t last = int64_t(t.get_as_double(2));
    // [-1, S, H*D]: with S and H*D fixed, -1 is the batch.
    const bool batch_inferred = t.get_as_double(0) == -1 && last == e;
    return (last == e || last == -1) && (batch_inferred || copies_dim(shape, 0, x, 0)) && copies_dim(shape, 1, x, 1);
  }
  static const Pattern target = concat_of(2, {scalar().as("e")});
  Match c;
  if (y->attr_int("allowzero", 0) != 0 || !match_value(shape, target, c)) return false;
  const int64_t ev = int64_t(c["e"]->initializer->get_as_double(0));
  return (ev == e || ev == -1) && copies_dim(c["e0"], 0, x, 0) && copies_dim(c["e1"], 1, x, 0);
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
