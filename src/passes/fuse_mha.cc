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
//   after (batch-first; fuse_epilogue then folds the Adds):
//     %qkv = Add(MatMul(%x, %Win), %bin)   %a = kiln.PackedAttention(%qkv) {num_heads, scale}
//     %y = Add(MatMul(%a, W_out^T), b_out)           (b_out zeros when the Gemm has none)
// 2. BERT, after fuse_attention: Attention(q, k, v, [mask]) (3-D) whose q, k, v are each
//    Add(MatMul(%x, W const), b const) of the same %x becomes
//    kiln.PackedAttention(Add(MatMul(%x, concat(Wq, Wk, Wv)), concat(bq, bk, bv)), [mask]).
//
// Every Reshape's output, as shape inference knows it (a constant target with 0/-1, or
// Shape/Gather/Slice/Concat/Mul/Div arithmetic: dims such as "batch" or "2*batch"), must be exactly
// the split/merge above, every dim known; perms,
// axes and Gather indices must be exactly these. The scale comes from the Q/K Muls' scalars
// (constants, or the TorchScript exporter's Shape -> Cast -> Sqrt arithmetic on the head size).
// Fires only with --fp16/--bf16 (ctx.reduced_precision, as fuse_attention) on float32 graphs,
// for a backend with a PackedAttention kernel (ctx.has_kernel), and only when every intermediate
// is read inside the pattern (Shape readers excepted) and is no graph output. Pre: types and
// shapes inferred, topological order. Both forms are rules of the rewrite driver (passes/rewrite),
// the exporters' K^T variants alternatives inside the ViT rule. Post: the new nodes stand where
// the final Transpose (ViT) or the Attention (BERT) stood; ViT's old nodes go as dead code (the
// Shape readers with them), BERT's with the rewrite.
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

using Dims = std::vector<Dim>;

// Whether shape inference proves v's dims are `want` (every one a number or a symbol).
bool dims_are(const Value* v, const Dims& want) { return v->shape.is_known() && v->shape.dims() == want; }

// The elements of a constant integer tensor (empty for anything else).
std::vector<int64_t> ints_of(const Value* v) {
  std::vector<int64_t> out;
  if (auto d = dims_value_of(v); d && v->initializer)
    for (const Dim& x : *d) out.push_back(x.value());
  return out;
}

// A scalar from constants and known dims through the exporters' scale arithmetic (the
// TorchScript exporter's Shape -> Gather -> Cast -> Sqrt of the head size): nullopt otherwise.
std::optional<double> number(const Value* v, int depth = 0) {
  if (!v || depth > 64) return std::nullopt;
  if (v->initializer) {
    if (v->initializer->numel() != 1) return std::nullopt;
    return v->initializer->get_as_double(0);
  }
  if (auto d = dims_value_of(v); d && d->size() == 1 && (*d)[0].is_static()) return double((*d)[0].value());
  const Node* p = v->producer;
  if (!p || !p->domain.empty() || p->inputs.empty()) return std::nullopt;
  const std::string& op = p->op_type;
  if (op == "Cast" || op == "Identity" || op == "Squeeze" || op == "Unsqueeze") return number(p->inputs[0], depth + 1);
  if (op == "Sqrt" || op == "Reciprocal") {
    auto x = number(p->inputs[0], depth + 1);
    if (!x || *x <= 0) return std::nullopt;
    return op == "Sqrt" ? std::sqrt(*x) : 1.0 / *x;
  }
  if ((op == "Mul" || op == "Div") && p->inputs.size() == 2) {
    auto a = number(p->inputs[0], depth + 1), b = number(p->inputs[1], depth + 1);
    if (!a || !b || (op == "Div" && (*b == 0 || !dtype_is_float(v->dtype)))) return std::nullopt;  // no integer division
    return op == "Mul" ? *a * *b : *a / *b;
  }
  return std::nullopt;
}

// A constant float32 initializer of the given dims.
const Tensor* weight(const Value* v, std::vector<int64_t> dims) {
  return v && v->initializer && v->dtype == DataType::kFloat32 && v->initializer->dims() == dims ? v->initializer
                                                                                                 : nullptr;
}

// A constant holding exactly `want` (ints_of: empty for anything else).
Pattern ints(std::vector<int64_t> want) {
  return any().where([want](const Value& v) { return ints_of(&v) == want; });
}

// torchvision's MultiheadAttention, both exporters (see the top).
class Vit {
 public:
  Pattern pattern() const {
    // The packed projection of the sequence-first input and its split into [3, S, B, E].
    Pattern proj = op("Add", {op("MatMul", {op("Transpose", {any().as("x")}).attr("perm", {1, 0, 2}).as("xt").keep(),
                                            any().as("w_in")}),
                              any().as("b_in")})
                       .commutative();
    Pattern split = op("Unsqueeze", {op("Reshape", {proj, any()}).as("r2"), ints({0})});
    Pattern sq = op("Squeeze", {op("Transpose", {split}).attr("perm", {3, 1, 2, 0, 4}),
                                any().where([](const Value& v) {
                                  const auto a = ints_of(&v);
                                  return a == std::vector<int64_t>{3} || a == std::vector<int64_t>{-2};
                                })});
    Pattern q = maybe(head(sq.as("sq"), 0, "q"), [this](Pattern x) { return scaled(std::move(x), "q_scale"); });
    Pattern k4 = head(any().as("sq"), 1, "k");
    Pattern kt = either({op("Transpose", {k4}).attr("perm", {0, 1, 3, 2}),
                         // the dynamo exporter's: Reshape [-1,S,D], Transpose [0,2,1], Reshape [B,H,D,S]
                         op("Reshape", {op("Transpose", {op("Reshape", {k4, any()}).as("kr1")}).attr("perm", {0, 2, 1}), any()})
                             .as("kr2")});
    Pattern k = maybe(kt, [this](Pattern x) { return scaled(std::move(x), "k_scale"); });
    Pattern softmax = op("Softmax", {op("MatMul", {q, k})}).where_node([](const Node& n) {
      const int64_t axis = n.attr_int("axis", -1);
      return n.opset >= 13 && (axis == -1 || axis == 3);
    });
    Pattern heads = op("Transpose", {op("MatMul", {softmax, head(any().as("sq"), 2, "v")})}).attr("perm", {2, 0, 1, 3});
    Pattern gemm = op("Gemm", {op("Reshape", {heads, any()}).as("ra"), any().as("w_out"), any().optional().as("b_out")})
                       .as("gemm")
                       .attr("transA", 0, 0)
                       .where_node([](const Node& n) { return n.attr_float("alpha", 1.f) == 1.f && n.attr_float("beta", 1.f) == 1.f; });
    return op("Transpose", {op("Reshape", {gemm, any()}).as("ro")}).attr("perm", {1, 0, 2});
  }

  bool rewrite(const Match& m, Rewriter& rw) const {
    Value *x = m["x"], *w_in = m["w_in"], *b_in = m["b_in"];
    if (x->dtype != DataType::kFloat32 || !x->shape.rank_known() || x->shape.rank() != 3 || !x->shape[2].is_static())
      return false;
    const int64_t e = x->shape[2].value();
    if (!weight(w_in, {e, 3 * e}) || !weight(b_in, {3 * e})) return false;
    // The dims of the sequence-first input, as every target must name them.
    const Shape& xd = m["xt"]->shape;
    if (!xd.is_known() || xd.rank() != 3) return false;
    const Dim s = xd[0], b = xd[1], et(e);
    if (!dims_are(m["r2"], Dims{s, b, Dim(3), et})) return false;
    double scale = 1.0;
    for (const char* c : {"q_scale", "k_scale"})
      if (m[c]) scale *= *number(m[c]);
    if (m["kr1"]) {  // dynamo's K^T: [B*H, S, D] and [B, H, D, S] of K's [B, H, S, D]
      const Shape& d4 = m["k4"]->shape;
      if (!d4.is_known() || d4.rank() != 4) return false;
      if (!dims_are(m["kr1"], Dims{d4[0] * d4[1], d4[2], d4[3]}) || !dims_are(m["kr2"], Dims{d4[0], d4[1], d4[3], d4[2]}))
        return false;
    }
    int64_t heads = 0;
    for (const char* h : {"q", "k", "v"})
      if (!head_dims(m, h, s, b, e, &heads)) return false;
    // Output side dims: [S*B, E] into the Gemm, [S, B, E] out of it.
    if (!dims_are(m["ra"], Dims{s * b, et}) || !dims_are(m["ro"], Dims{s, b, et})) return false;
    const Tensor* w_out = weight(m["w_out"], {e, e});
    if (!w_out || (m["b_out"] && !weight(m["b_out"], {e}))) return false;
    return build(m, rw, e, heads, scale, w_out);
  }

 private:
  // [Mul by a number (a constant, or the exporter's arithmetic on the head size)] of x.
  static Pattern scaled(Pattern x, const char* name) {
    return op("Mul", {std::move(x), any().as(name).where([](const Value& v) { return number(&v).has_value(); })}).commutative();
  }

  // One head operand: Reshape [B,H,S,D] of Transpose [1,0,2] of Reshape [S,B*H,D] of Gather(sq, index);
  // the Reshapes captured as name + "3" / name + "4" (dims checked by head_dims).
  static Pattern head(Pattern sq, int64_t index, const std::string& name) {
    Pattern idx = any().where([index](const Value& v) {
      const auto a = ints_of(&v);
      return v.initializer && v.initializer->dims().empty() && a.size() == 1 && a[0] == index;
    });
    Pattern gather = op("Gather", {std::move(sq), idx}).attr("axis", 0, 0);
    Pattern r3 = op("Reshape", {gather, any()}).as(name + "3");
    return op("Reshape", {op("Transpose", {r3}).attr("perm", {1, 0, 2}), any()}).as(name + "4");
  }

  // Head operand `name` splits [S, B, E] into [S, B*H, D] then [B, H, S, D]: sets *heads (H = E / D),
  // or checks it after the first.
  static bool head_dims(const Match& m, const std::string& name, const Dim& s, const Dim& b, int64_t e, int64_t* heads) {
    const Shape& d3 = m[name + "3"]->shape;
    if (!d3.rank_known() || d3.rank() != 3 || !d3[2].is_static() || d3[2].value() <= 0 || e % d3[2].value()) return false;
    const int64_t d = d3[2].value(), h = e / d;
    if (*heads && *heads != h) return false;
    *heads = h;
    return dims_are(m[name + "3"], Dims{s, b * Dim(h), Dim(d)}) && dims_are(m[name + "4"], Dims{b, Dim(h), s, Dim(d)});
  }

  //   %qkv = Add(MatMul(%x, %Win), %bin)   %a = kiln.PackedAttention(%qkv)   %y = Add(MatMul(%a, W_out^T), b_out)
  bool build(const Match& m, Rewriter& rw, int64_t e, int64_t heads, double scale, const Tensor* w_out) const {
    const std::string p = m.root->outputs[0]->name + "/mha";  // value names are unique
    auto fresh = [&](const std::string& n) { return rw.value(n, DataType::kFloat32); };
    auto proj = fresh(p + "/in_proj"), qkv = fresh(p + "/qkv"), a = fresh(p + "/attention");
    if (!proj || !qkv || !a) return false;
    rw.add("MatMul", "", {m["x"], m["w_in"]}, {*proj}, p + "/in_proj");
    rw.add("Add", "", {*proj, m["b_in"]}, {*qkv}, p + "/qkv");
    Node* att = rw.add("PackedAttention", "kiln", {*qkv}, {*a}, p + "/attention");
    att->attrs["num_heads"] = heads;
    att->attrs["scale"] = float(scale);
    Value* w = m["w_out"];  // the Gemm's B, as is
    if (m.node("gemm")->attr_int("transB", 0) != 0) {  // Gemm's transB: the MatMul wants W_out^T
      Tensor wt = Tensor::zeros(DataType::kFloat32, {e, e}).value();
      for (int64_t i = 0; i < e; ++i)
        for (int64_t j = 0; j < e; ++j) wt.mutable_data<float>()[j * e + i] = w_out->data<float>()[i * e + j];
      auto made = rw.constant(p + "/out_proj_weight_t", std::move(wt));
      if (!made) return false;
      w = *made;
    }
    Value* bias = m["b_out"];
    if (!bias) {  // (the dynamo exporter's Gemm has none) zeros: fuse_epilogue then folds the residual Add too
      auto made = rw.constant(p + "/out_proj_bias_zero", Tensor::zeros(DataType::kFloat32, {e}).value());
      if (!made) return false;
      bias = *made;
    }
    auto out = fresh(p + "/out_proj");
    if (!out) return false;
    rw.add("MatMul", "", {*a, w}, {*out}, p + "/out_proj");
    rw.replace_root("Add", "", {*out, bias}, {}, {}, p + "/out_proj_bias");
    return true;
  }
};

// BERT after fuse_attention: Attention(q, k, v, [mask]) whose q, k, v are each a Linear layer of one %x.
Pattern bert() {
  auto linear = [](const std::string& n) {
    return op("Add", {op("MatMul", {any().as("x"), any().as("w" + n)}), any().as("b" + n)}).commutative().as(n);
  };
  return op("Attention", {linear("q"), linear("k"), linear("v"), any().optional().as("mask")}).where_node([](const Node& at) {
    for (size_t i = 1; i < at.outputs.size(); ++i) if (at.outputs[i]) return false;
    const int64_t h = at.attr_int("q_num_heads", 0);
    return h > 0 && at.attr_int("kv_num_heads", 0) == h && at.attr_int("is_causal", 0) == 0 &&
           at.attr_float("softcap", 0.f) == 0.f && !at.has_attr("softmax_precision") &&
           at.attr_int("qk_matmul_output_mode", 0) == 0 && !at.has_attr("left_window_size") &&
           !at.has_attr("right_window_size");
  });
}

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

//   kiln.PackedAttention(Add(MatMul(%x, concat(Wq, Wk, Wv)), concat(bq, bk, bv)), [mask])
bool pack_bert(const Match& m, Rewriter& rw) {
  const Node* at = m.root;
  const Tensor *w[3], *b[3];
  int64_t e0 = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::vector<std::string>{"q", "k", "v"}[size_t(i)];
    const Value* v = m[n];
    for (int j = 0; j < i; ++j) if (at->inputs[size_t(j)] == v) return false;
    if (v->dtype != DataType::kFloat32 || !v->shape.rank_known() || v->shape.rank() != 3 || !v->shape[2].is_static())
      return false;
    const int64_t e = v->shape[2].value();
    b[i] = weight(m["b" + n], {e});
    w[i] = weight(m["w" + n], {e, e});
    if (!b[i] || !w[i] || (i > 0 && e != e0)) return false;
    if (i == 0) e0 = w[0]->dims()[0];
  }
  Value* mask = m["mask"];
  if (mask && mask->dtype != DataType::kFloat32) return false;
  const std::string p = at->outputs[0]->name + "/packed";
  auto wt = concat_last({w[0], w[1], w[2]});
  auto bt = concat_last({b[0], b[1], b[2]});
  if (!wt || !bt) return false;
  auto wv = rw.constant(p + "/qkv_weight", std::move(*wt));
  auto bv = rw.constant(p + "/qkv_bias", std::move(*bt));
  auto proj = rw.value(p + "/qkv_proj", DataType::kFloat32);
  auto qkv = rw.value(p + "/qkv", DataType::kFloat32);
  if (!wv || !bv || !proj || !qkv) return false;
  rw.add("MatMul", "", {m["x"], *wv}, {*proj}, p + "/qkv_proj");
  rw.add("Add", "", {*proj, *bv}, {*qkv}, p + "/qkv");
  std::vector<Value*> in = {*qkv};
  if (mask) in.push_back(mask);
  Node* pa = rw.replace_root("PackedAttention", "kiln", in, {}, {at->outputs[0]}, p);
  pa->attrs["num_heads"] = at->attr_int("q_num_heads", 0);
  if (at->has_attr("scale")) pa->attrs["scale"] = at->attr_float("scale", 1.f);
  return true;
}

}  // namespace

Status fuse_mha(Graph& graph, PassContext& ctx) {
  if (ctx.reduced_precision != DataType::kFloat16 && ctx.reduced_precision != DataType::kBFloat16) return Status::ok();
  if (ctx.has_kernel && !ctx.has_kernel("kiln", "PackedAttention")) {  // would run as a CPU fallback
    ctx.counters["fuse_mha.no_backend_kernel"] = 1;
    return Status::ok();
  }
  const Vit vit;
  const Rule rules[] = {
      // The old nodes go as dead code: the Shape nodes of the exporters' arithmetic still read them.
      {"vit", vit.pattern(), [&vit](const Match& m, Rewriter& rw) { return vit.rewrite(m, rw); },
       [](const Node& n) { return n.domain.empty() && n.op_type == "Shape"; }},
      {"bert", bert(), pack_bert},
  };
  KILN_ASSIGN_OR_RETURN(int fused, rewrite::apply(graph, ctx, "fuse_mha", rules));
  if (fused) {
    KILN_RETURN_IF_ERROR(infer_graph(graph));
    KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph, ctx));
  }
  ctx.counters["fuse_mha.vit"] += 0;  // shown when 0 too
  ctx.counters["fuse_mha.bert"] += 0;
  return Status::ok();
}

}  // namespace kiln::passes
