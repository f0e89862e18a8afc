// fold_constants: evaluates every node whose inputs are all constants and replaces its outputs
// with constant weights.
//
//   before:  %s = Shape(%w)            (w an initializer)
//            %y = Reshape(%x, %s)
//   after:   %y = Reshape(%x, %s)      (s now an initializer holding w's dims)
//
// Pre: graph in topological order; ctx.evaluate set. Post: no node has only constant inputs,
// except random ops (RandomNormal, Bernoulli, ...), which must draw anew on every run, and nodes
// whose outputs would be over 64 MiB (kMaxFoldedBytes) AND larger than their inputs together.
// The folded node is left without readers; eliminate_dead_nodes removes it.
#include <optional>

#include "passes/pipeline.h"

namespace kiln::passes {

namespace {
bool is_random(const Node& n) { return n.op_type.rfind("Random", 0) == 0 || n.op_type == "Bernoulli"; }

// Outputs larger than this are folded only when they are no larger than the node's inputs
// together (a Transpose, Reshape or Slice of a big weight: GPT-2's tied 154 MB embedding read as
// the output projection). A node that would make a big constant out of small ones (a
// ConstantOfShape of [2^40] asks for 4 TiB) stays and computes its output at run time, where the
// allocation's size is checked, rather than allocating it on the host at build time and storing
// it in the engine file.
constexpr uint64_t kMaxFoldedBytes = uint64_t(64) << 20;

std::optional<uint64_t> nbytes(const Value* v) {
  if (!v || !v->shape.is_static() || dtype_bits(v->dtype) == 0) return std::nullopt;
  auto numel = checked_numel(v->shape.static_dims(), v->name);
  if (!numel || *numel > int64_t(uint64_t(1) << 60)) return std::nullopt;
  return dtype_nbytes(v->dtype, *numel);
}

bool too_large_to_fold(const Node& n) {
  uint64_t in = 0, out = 0;
  for (const Value* v : n.inputs)
    if (auto b = nbytes(v)) in += *b;
  for (const Value* v : n.outputs) {
    if (!v || !v->shape.is_static() || dtype_bits(v->dtype) == 0) continue;
    auto b = nbytes(v);
    if (!b) return true;
    out += *b;
  }
  return out > kMaxFoldedBytes && out > in;
}
}  // namespace

Status fold_constants(Graph& graph, PassContext& ctx) {
  if (!ctx.evaluate) return Status::ok();
  int folded = 0;
  for (const auto& np : graph.nodes()) {
    Node& n = *np;
    if (is_random(n) || n.outputs.empty()) continue;
    if (!n.subgraphs().empty()) continue;  // If/Loop/Scan bodies may read non-constant outer values
    std::vector<const Tensor*> args;
    bool all_const = true;
    for (const Value* v : n.inputs) {
      if (v && !v->initializer) { all_const = false; break; }
      args.push_back(v ? v->initializer : nullptr);
    }
    if (!all_const) continue;
    if (too_large_to_fold(n)) {
      ctx.counters["fold_constants.too_large"]++;
      continue;
    }
    auto outs = ctx.evaluate(n, args);
    if (!outs) return outs.status();
    for (size_t i = 0; i < n.outputs.size(); ++i)
      if (n.outputs[i]) KILN_RETURN_IF_ERROR(graph.make_constant(n.outputs[i], std::move((*outs)[i])));
    n.outputs.clear();  // the node now produces nothing; eliminate_dead_nodes drops it
    ++folded;
  }
  ctx.counters["fold_constants.folded"] += folded;
  return Status::ok();
}

}  // namespace kiln::passes
