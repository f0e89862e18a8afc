// fuse_conv_act: folds a convolution's residual add and ReLU into the convolution.
//
//   before:  %c = Conv(%x, %w, %b)            after:  %y = kiln.ConvAct(%x, %w, %b, %z)
//            %s = Add(%c, %z)                                 {activation="Relu", <Conv's attrs>}
//            %y = Relu(%s)
//
// Also Conv -> Relu (no residual) and Conv -> Add (no activation), and Relu written as
// Clip(%s, 0) with no maximum, as rules of the rewrite driver (passes/rewrite). Fires only when every intermediate value is read inside the pattern
// only and is not a graph output, and the residual has the convolution's shape (no
// broadcasting). Pre: types and shapes inferred, topological order. Post: the fused node stands
// where the last matched node stood, so every input is still defined before it. Must not fire:
// a Conv whose output is read twice, a broadcasting Add, or a Clip with a maximum (ReLU6).
#include "ir/activation.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

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

bool conv_act(const Match& m, Rewriter& rw, Activation activation) {
  const Node* c = m.node("conv");
  std::vector<Value*> in = {c->inputs[0], c->inputs[1], c->inputs.size() > 2 ? c->inputs[2] : nullptr};
  if (m["z"]) in.push_back(m["z"]);
  auto attrs = c->attrs;
  attrs["activation"] = std::string(activation_name(activation));
  rw.replace_root("ConvAct", "kiln", std::move(in), std::move(attrs));
  return true;
}

const Rule kRules[] = {
    {"conv_add_relu", op("Relu", {residual_add()}), [](const Match& m, Rewriter& rw) { return conv_act(m, rw, Activation::kRelu); }},
    {"conv_relu", op("Relu", {conv()}), [](const Match& m, Rewriter& rw) { return conv_act(m, rw, Activation::kRelu); }},
    {"conv_add_clip0", clip_at_zero(residual_add()), [](const Match& m, Rewriter& rw) { return conv_act(m, rw, Activation::kRelu); }},
    {"conv_clip0", clip_at_zero(conv()), [](const Match& m, Rewriter& rw) { return conv_act(m, rw, Activation::kRelu); }},
    {"conv_add", residual_add(), [](const Match& m, Rewriter& rw) { return conv_act(m, rw, Activation::kNone); }},
};

}  // namespace

Status fuse_conv_act(Graph& graph, PassContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int fused, rewrite::apply(graph, ctx, "fuse_conv_act", kRules));
  ctx.counters["fuse_conv_act.fused"] += fused;
  return Status::ok();
}

}  // namespace kiln::passes
