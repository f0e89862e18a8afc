// fuse_epilogue: folds what follows a convolution or a Linear layer into the layer's epilogue, as
// the backend's kernels take it: one rule list, each rule asking the backend (PassContext's
// `supports`, the kernels' check()) whether it runs the fused layer it would make; where it does
// not, the rule declines and a smaller fusion (or none) is tried.
//
// Convolutions (kiln.ConvAct, the CUDA backend's cuDNN call with its bias + residual + ReLU pass):
//   before:  %c = Conv(%x, %w, %b)            after:  %y = kiln.ConvAct(%x, %w, %b, %z)
//            %s = Add(%c, %z)                                 {activation="Relu", <Conv's attrs>}
//            %y = Relu(%s)
//   also Conv -> Relu (no residual), Conv -> Add (no activation), and Relu written as Clip(%s, 0)
//   with no maximum. The residual has the convolution's shape (no broadcasting).
//
// Linear layers (kiln.MatMulBias, one cuBLASLt GEMM with a bias(+activation) epilogue instead of a
// GEMM and one elementwise kernel per op: transformers have 6 Linear layers and one GELU a block):
//   before:  %m = MatMul(%a, %w)              after:  %y = kiln.MatMulBias(%a, %w, %b)
//            %s = Add(%m, %b)     (or Add(%b, %m))             {activation = "" | "Relu" | "Gelu"}
//            [%y = Relu(%s) | %y = Gelu(%s) | the exporters' erf GELU of %s:
//             %d = Div(%s, sqrt2) (or Mul by 1/sqrt2), %e = Erf(%d), %p = Add(%e, 1),
//             %q = Mul(%s, %p), %y = Mul(%q, 0.5)  (or %q = Mul(%s, 0.5), %y = Mul(%q, %p),
//             or the dynamo exporter's %h = Mul(%p, 0.5), %y = Mul(%s, %h))]
//   without activation, a residual add also folds in (the GEMM's C operand, free on cuBLASLt):
//            %y = Add(%s, %z)  ->  %y = kiln.MatMulBias(%a, %w, %b, %z)   (%z of %y's shape)
//   %w is 2-D, %a has rank >= 2, %b a constant 1-D tensor of %w's column count, the type
//   float32/float16/bfloat16; %z's shape is proven equal (the same dims, each a number or a
//   symbol, as shape inference knows them).
//
// The epilogues offered are those above (ActivationSlot::kConvAct takes Clip and Silu too, but
// only convert_layout's channels-last convolutions run them on CUDA; they are folded there). Fires
// only when every intermediate value is read inside the pattern only and is not a graph output.
// Pre: types and shapes inferred, topological order; fuse_mha has run (it matches the attention
// projections' MatMul + Add). Post: each fused node stands where the last matched node stood, so
// every input is still defined before it. Must not fire: a Conv/MatMul whose output is read twice,
// a broadcasting Add, a Clip with a maximum (ReLU6), a bias that is not constant or not along the
// last axis only, a residual after an activation, a fused layer the backend would not run.
#include <cmath>

#include "ir/activation.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

// Whether the backend runs `op` with these inputs, attributes and outputs (a node built only to
// ask; the rule makes the real one through the Rewriter when the answer is yes).
bool backend_takes(const PassContext& ctx, const std::string& op, const std::vector<Value*>& in,
                   const std::map<std::string, AttrValue>& attrs, const std::vector<Value*>& out) {
  if (!ctx.supports) return true;
  Node n;
  n.op_type = op;
  n.domain = "kiln";
  n.opset = 1;
  n.inputs = in;
  n.attrs = attrs;
  n.outputs = out;
  return ctx.supports(n, nullptr);
}

// ---- convolutions ----

Pattern conv() {
  return op("Conv").as("conv").where_node([](const Node& n) { return n.outputs.size() == 1 && n.inputs.size() >= 2; });
}

// Add(%c, %z), either order, %z another value of %c's known shape.
Pattern residual_add() {
  return op("Add", {conv(), any().as("z")}).commutative().where_node([](const Node& n) {
    return n.inputs[0] != n.inputs[1] && n.inputs[0]->shape.is_known() && n.inputs[0]->shape == n.inputs[1]->shape;
  });
}

// Clip(%v, 0) with no upper bound is Relu (torch.clamp(min=0); opset 11's Clip takes its bounds
// as inputs). A Clip with a maximum (ReLU6) must not fire.
Pattern clip_at_zero(Pattern v) {
  return op("Clip", {std::move(v), scalar(0.0), any().optional()}).where_node([](const Node& n) {
    return n.opset >= 11 && (n.inputs.size() < 3 || !n.inputs[2]);
  });
}

bool conv_act(const PassContext& ctx, const Match& m, Rewriter& rw, Activation activation) {
  const Node* c = m.node("conv");
  std::vector<Value*> in = {c->inputs[0], c->inputs[1], c->inputs.size() > 2 ? c->inputs[2] : nullptr};
  if (m["z"]) in.push_back(m["z"]);
  auto attrs = c->attrs;
  attrs["activation"] = std::string(activation_name(activation));
  if (!backend_takes(ctx, "ConvAct", in, attrs, m.root->outputs)) return false;
  rw.replace_root("ConvAct", "kiln", std::move(in), std::move(attrs));
  return true;
}

// ---- Linear layers ----

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

bool matmul_bias(const PassContext& ctx, const Match& m, Rewriter& rw, Activation activation, Value* residual = nullptr) {
  const std::string act = activation_name(activation);
  if (!linear(m)) return false;
  std::vector<Value*> in = {m["a"], m["w"], m["b"]};
  if (residual) in.push_back(residual);
  std::map<std::string, AttrValue> attrs{{"activation", act}};
  if (!backend_takes(ctx, "MatMulBias", in, attrs, m.root->outputs)) return false;
  rw.replace_root("MatMulBias", "kiln", std::move(in), std::move(attrs), {},
                  m.node("mm")->name + "+Add" + (act.empty() ? "" : "+" + act) + (residual ? "+Add" : ""));
  return true;
}

constexpr const char* kGeluRules[] = {"linear_gelu_op", "linear_erf_gelu_half_last", "linear_erf_gelu_product_half",
                                      "linear_erf_gelu_half_first"};
constexpr const char* kConvRules[] = {"conv_add_relu", "conv_relu", "conv_add_clip0", "conv_clip0", "conv_add"};
constexpr const char* kLinearRules[] = {"linear_relu", "linear_gelu_op", "linear_erf_gelu_half_last",
                                        "linear_erf_gelu_product_half", "linear_erf_gelu_half_first",
                                        "linear_residual", "linear_bias"};

// The rules, each closing over the pass context (the backend's answer).
std::vector<Rule> rules(const PassContext& ctx) {
  const PassContext* c = &ctx;
  auto conv_rule = [c](const char* name, Pattern p, Activation a) {
    return Rule{name, std::move(p), [c, a](const Match& m, Rewriter& rw) { return conv_act(*c, m, rw, a); }};
  };
  auto linear_rule = [c](const char* name, Pattern p, Activation a) {
    return Rule{name, std::move(p), [c, a](const Match& m, Rewriter& rw) { return matmul_bias(*c, m, rw, a); }};
  };
  return {
      conv_rule(kConvRules[0], op("Relu", {residual_add()}), Activation::kRelu),
      conv_rule(kConvRules[1], op("Relu", {conv()}), Activation::kRelu),
      conv_rule(kConvRules[2], clip_at_zero(residual_add()), Activation::kRelu),
      conv_rule(kConvRules[3], clip_at_zero(conv()), Activation::kRelu),
      conv_rule(kConvRules[4], residual_add(), Activation::kNone),
      linear_rule(kLinearRules[0], op("Relu", {bias_add()}), Activation::kRelu),
      linear_rule(kLinearRules[1],
                  op("Gelu", {bias_add()}).where_node([](const Node& n) { return activation_of(n) == Activation::kGelu; }),
                  Activation::kGelu),
      // s * (p * 0.5): the dynamo exporter's.
      linear_rule(kLinearRules[2], op("Mul", {bias_add(), op("Mul", {erf_plus_one(), scalar(0.5)}).commutative()}).commutative(),
                  Activation::kGelu),
      // (s * p) * 0.5: the TorchScript exporter's.
      linear_rule(kLinearRules[3], op("Mul", {op("Mul", {bias_add(), erf_plus_one()}).commutative(), scalar(0.5)}).commutative(),
                  Activation::kGelu),
      // (s * 0.5) * p.
      linear_rule(kLinearRules[4], op("Mul", {op("Mul", {bias_add(), scalar(0.5)}).commutative(), erf_plus_one()}).commutative(),
                  Activation::kGelu),
      // A residual add of %s's known shape, as the GEMM's C operand.
      {kLinearRules[5], op("Add", {bias_add(), any().as("z")}).commutative(),
       [c](const Match& m, Rewriter& rw) {
         Value *s = m["s"], *z = m["z"];
         if (z == s || z->dtype != s->dtype || !z->shape.is_known() || s->shape != z->shape ||
             m.root->outputs[0]->shape != z->shape)
           return false;
         return matmul_bias(*c, m, rw, Activation::kNone, z);
       }},
      linear_rule(kLinearRules[6], bias_add(), Activation::kNone),
  };
}

}  // namespace

Status fuse_epilogue(Graph& graph, PassContext& ctx) {
  const std::vector<Rule> all = rules(ctx);
  KILN_RETURN_IF_ERROR(rewrite::apply(graph, ctx, "fuse_epilogue", all).status());
  auto sum = [&](auto& names) {
    int n = 0;
    for (const char* r : names)
      if (auto it = ctx.counters.find("fuse_epilogue." + std::string(r)); it != ctx.counters.end()) n += it->second;
    return n;
  };
  ctx.counters["fuse_epilogue.conv"] = sum(kConvRules);
  ctx.counters["fuse_epilogue.linear"] = sum(kLinearRules);
  ctx.counters["fuse_epilogue.gelu"] = sum(kGeluRules);
  return Status::ok();
}

}  // namespace kiln::passes
