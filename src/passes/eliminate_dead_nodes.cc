// eliminate_dead_nodes: removes nodes none of whose outputs is read by a later node or is a
// graph output, sweeping backwards so whole dead chains go in one pass.
//
//   before:  %a = Relu(%x)     (nothing reads %a)
//            %y = Neg(%x)
//   after:   %y = Neg(%x)
//
// Pre: topological order. Post: every remaining node has a live output. Values stay in the
// graph's table (unreferenced), which costs nothing at run time.
#include <set>

#include "passes/pipeline.h"

namespace kiln::passes {

Status eliminate_dead_nodes(Graph& graph, PassContext& ctx) {
  std::set<const Value*> live(graph.outputs.begin(), graph.outputs.end());
  auto& nodes = graph.mutable_nodes();
  std::vector<bool> keep(nodes.size(), false);
  for (size_t i = nodes.size(); i-- > 0;) {
    const Node& n = *nodes[i];
    for (const Value* out : n.outputs) keep[i] = keep[i] || (out && live.count(out));
    if (!keep[i]) continue;
    for (const Value* in : n.inputs) if (in) live.insert(in);
    for (const Value* in : n.implicit_inputs()) live.insert(in);  // read by its subgraphs
  }
  int removed = 0;
  std::vector<std::unique_ptr<Node>> kept;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (keep[i]) { kept.push_back(std::move(nodes[i])); continue; }
    for (Value* out : nodes[i]->outputs) if (out && out->producer == nodes[i].get()) out->producer = nullptr;
    ++removed;
  }
  nodes = std::move(kept);
  ctx.counters["eliminate_dead_nodes.removed"] += removed;
  return Status::ok();
}

}  // namespace kiln::passes
