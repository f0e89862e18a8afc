// fuse_conv_act: folds a convolution's residual add and ReLU into the convolution.
//
//   before:  %c = Conv(%x, %w, %b)            after:  %y = kiln.ConvAct(%x, %w, %b, %z)
//            %s = Add(%c, %z)                                 {activation="Relu", <Conv's attrs>}
//            %y = Relu(%s)
//
// Also Conv -> Relu (no residual) and Conv -> Add (no activation). Fires only when every
// intermediate value has exactly one reader and is not a graph output, and the residual has the
// convolution's shape (no broadcasting). Pre: types and shapes inferred, topological order.
// Post: the fused node stands where the last matched node stood, so every input is still
// defined before it. Must not fire: a Conv whose output is read twice, or a broadcasting Add.
#include <map>
#include <set>

#include "passes/pattern.h"
#include "passes/pipeline.h"

namespace kiln::passes {

namespace {

bool is_op(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; }

}  // namespace

Status fuse_conv_act(Graph& graph, PassContext& ctx) {
  const Readers r(graph);
  std::map<Node*, std::unique_ptr<Node>> replace;  // last matched node -> fused node
  std::set<Node*> drop;
  for (const auto& np : graph.nodes()) {
    Node* conv = np.get();
    if (!is_op(conv, "Conv") || conv->outputs.size() != 1 || drop.count(conv)) continue;
    Value* out = conv->outputs[0];
    Node* next = r.only(out);
    if (next && drop.count(next)) continue;  // already part of another match (the other branch of an Add)
    Node* add = nullptr;
    Value* residual = nullptr;
    if (is_op(next, "Add") && next->inputs.size() == 2) {
      residual = next->inputs[0] == out ? next->inputs[1] : next->inputs[0];
      if (residual == out || !same_known_shape(residual->shape, out->shape)) residual = nullptr;
      if (residual) { add = next; next = r.only(add->outputs[0]); }
      if (next && drop.count(next)) continue;
    }
    Node* relu = is_op(next, "Relu") ? next : nullptr;
    if (!add && !relu) continue;
    Node* last = relu ? relu : add;
    auto fused = std::make_unique<Node>();
    fused->name = conv->name + (add ? "+Add" : "") + (relu ? "+Relu" : "");
    fused->op_type = "ConvAct";
    fused->domain = "kiln";
    fused->opset = 1;
    fused->attrs = conv->attrs;
    fused->attrs["activation"] = std::string(relu ? "Relu" : "");
    fused->inputs = {conv->inputs[0], conv->inputs[1], conv->inputs.size() > 2 ? conv->inputs[2] : nullptr};
    if (residual) fused->inputs.push_back(residual);
    fused->outputs = {last->outputs[0]};
    drop.insert(conv);
    if (add) drop.insert(add);
    if (relu) drop.insert(relu);
    replace[last] = std::move(fused);
  }
  const int fused = splice_fused(graph, replace, drop);
  ctx.counters["fuse_conv_act.fused"] += fused;
  return Status::ok();
}

}  // namespace kiln::passes
