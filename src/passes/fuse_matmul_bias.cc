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
// (%z's shape is proven equal: the same dims, each a number or a symbol, as shape inference knows them)
//
// Fires only when %w is 2-D, %a has rank >= 2, %b is a constant 1-D tensor of %w's column count,
// every intermediate value is read only inside the pattern and is not a graph output, and the
// type is float32/float16/bfloat16. Each form is one rule of the rewrite driver (passes/rewrite);
// the exporters' GELU variants are three rules side by side. Pre: types and shapes inferred, topological order. Post: the
// fused node stands where the last matched node stood, so every input is defined before it.
// Must not fire: a MatMul whose output has another reader, a bias that is not constant or does not
// run along the last axis only; no residual after an activation, when the Add broadcasts, or
// when a dim of %z is unknown or not %s's.
#include <cmath>

#include "ir/activation.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

bool is_float(DataType t) { return t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16; }

// %s = Add(MatMul(%a, %w), %b), either Add order; the types and shapes are checked by linear().
Pattern bias_add() { return op("Add", {op("MatMul", {any().as("a"), any().as("w")}).as("mm"), constant().as("b")}).commutative().as("s"); }
Pattern s() { return any().as("s"); }

// The exporters' erf GELU of %s: %p = Add(Erf(%s / sqrt2 or %s * sqrt(1/2)), 1) ...
Pattern erf_plus_one() {
  Pattern scaled = either({op("Div", {s(), scalar(std::sqrt(2.0))}), op("Mul", {s(), scalar(std::sqrt(0.5))}).commutative()});
  return op("Add", {op("Erf", {scaled}), scalar(1.0)}).commutative();
}

// Whether the match is a Linear layer kiln.MatMulBias takes: float types, %w 2-D, %a rank >= 2,
// %b a 1-D constant of %w's column count.
bool linear(const Match& m) {
  const Value *a = m["a"], *w = m["w"], *b = m["b"], *out = m.node("mm")->outputs[0];
  if (!is_float(out->dtype) || a->dtype != out->dtype || w->dtype != out->dtype || b->dtype != out->dtype) return false;
  if (!a->shape.rank_known() || a->shape.rank() < 2 || !w->shape.rank_known() || w->shape.rank() != 2) return false;
  return b->initializer->dims().size() == 1 && w->shape[1].is_static() && b->initializer->dims()[0] == w->shape[1].value();
}

bool matmul_bias(const Match& m, Rewriter& rw, Activation activation, Value* residual = nullptr) {
  const std::string act = activation_name(activation);
  if (!linear(m)) return false;
  std::vector<Value*> in = {m["a"], m["w"], m["b"]};
  if (residual) in.push_back(residual);
  rw.replace_root("MatMulBias", "kiln", std::move(in), {{"activation", act}}, {},
                  m.node("mm")->name + "+Add" + (act.empty() ? "" : "+" + act) + (residual ? "+Add" : ""));
  return true;
}

Rule gelu_rule(const char* name, Pattern p) {
  return {name, std::move(p), [](const Match& m, Rewriter& rw) { return matmul_bias(m, rw, Activation::kGelu); }};
}

const Rule kRules[] = {
    {"relu", op("Relu", {bias_add()}), [](const Match& m, Rewriter& rw) { return matmul_bias(m, rw, Activation::kRelu); }},
    {"gelu_op", op("Gelu", {bias_add()}).where_node([](const Node& n) { return activation_of(n) == Activation::kGelu; }),
     [](const Match& m, Rewriter& rw) { return matmul_bias(m, rw, Activation::kGelu); }},
    // s * (p * 0.5): the dynamo exporter's.
    gelu_rule("erf_gelu_half_last", op("Mul", {bias_add(), op("Mul", {erf_plus_one(), scalar(0.5)}).commutative()}).commutative()),
    // (s * p) * 0.5: the TorchScript exporter's.
    gelu_rule("erf_gelu_product_half", op("Mul", {op("Mul", {bias_add(), erf_plus_one()}).commutative(), scalar(0.5)}).commutative()),
    // (s * 0.5) * p.
    gelu_rule("erf_gelu_half_first", op("Mul", {op("Mul", {bias_add(), scalar(0.5)}).commutative(), erf_plus_one()}).commutative()),
    // A residual add of %s's known shape, as the GEMM's C operand.
    {"residual", op("Add", {bias_add(), any().as("z")}).commutative(), [](const Match& m, Rewriter& rw) {
       Value *s = m["s"], *z = m["z"];
       if (z == s || z->dtype != s->dtype || !z->shape.is_known() || s->shape != z->shape || m.root->outputs[0]->shape != z->shape)
         return false;
       return matmul_bias(m, rw, Activation::kNone, z);
     }},
    {"bias", bias_add(), [](const Match& m, Rewriter& rw) { return matmul_bias(m, rw, Activation::kNone); }},
};

}  // namespace

Status fuse_matmul_bias(Graph& graph, PassContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int fused, rewrite::apply(graph, ctx, "fuse_matmul_bias", kRules));
  ctx.counters["fuse_matmul_bias.fused"] += fused;
  int& gelu = ctx.counters["fuse_matmul_bias.gelu"];
  for (const char* rule : {"gelu_op", "erf_gelu_half_last", "erf_gelu_product_half", "erf_gelu_half_first"})
    gelu += ctx.counters["fuse_matmul_bias." + std::string(rule)];
  return Status::ok();
}

}  // namespace kiln::passes
