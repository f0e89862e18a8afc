// A node's subgraph attribute run on the CPU with a nested Executor: the control-flow kernels
// (If, Loop, Scan) and FlexAttention's score_mod / prob_mod. prepare_body() builds the executor
// and binds the body's captures to the enclosing-scope tensors the executor handed over as the
// node's implicit inputs (see graph.h); run_body() runs it once.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

// The tensors `body` reads from the enclosing scope, in the order of body.captures.
inline Expected<std::vector<const Tensor*>> bind_captures(const KernelContext& ctx, const Graph& body) {
  const std::vector<Value*> implicit = ctx.node().implicit_inputs();
  std::vector<const Tensor*> out;
  for (const auto& c : body.captures) {
    auto it = std::find(implicit.begin(), implicit.end(), c.outer);
    const Tensor* t = it == implicit.end() ? nullptr : ctx.implicit_input(static_cast<size_t>(it - implicit.begin()));
    if (!t && !c.inner->initializer) return ctx.fail("no value was bound for '", c.outer->name, "', which its body reads");
    out.push_back(t);
  }
  return out;
}

// A nested executor for `body` plus its bound captures.
struct Body {
  std::unique_ptr<Executor> executor;
  std::vector<const Tensor*> captures;
  const Graph* graph = nullptr;
};

inline Expected<Body> prepare_body(const KernelContext& ctx, const char* key) {
  Body b;
  b.graph = ctx.node().attr_graph(key);
  if (!b.graph) return ctx.fail("needs the subgraph attribute '", key, "'");
  auto ex = Executor::create(*b.graph);
  if (!ex) return ctx.fail("subgraph '", key, "': ", ex.status().message());
  b.executor = std::move(ex).value();
  KILN_ASSIGN_OR_RETURN(b.captures, bind_captures(ctx, *b.graph));
  return b;
}

inline Expected<std::vector<Tensor>> run_body(const KernelContext& ctx, const Body& b, const std::vector<Tensor>& inputs,
                                       const std::string& where) {
  auto outs = b.executor->run_subgraph(inputs, b.captures);
  if (!outs) return ctx.fail(where, outs.status().message());
  if (outs->size() != b.graph->outputs.size()) return ctx.fail(where, "the body returned too few values");
  return outs;
}

}  // namespace kiln::cpu
