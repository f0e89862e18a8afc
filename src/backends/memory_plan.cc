#include "backends/memory_plan.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <map>
#include <numeric>
#include <set>

namespace kiln {

namespace {
uint64_t align(uint64_t n) { return (n + kBlockAlignment - 1) / kBlockAlignment * kBlockAlignment; }

// Follows alias chains to the request that owns the memory.
int root_of(const std::vector<PlanRequest>& r, int i) {
  while (r[i].alias_of >= 0) i = r[i].alias_of;
  return i;
}
}  // namespace

MemoryPlan plan_memory(const std::vector<PlanRequest>& requests) {
  const int n = static_cast<int>(requests.size());
  // A block lives from its owner's write to the last read of the owner or any view of it.
  std::vector<int> start(n), end(n);
  std::vector<uint64_t> size(n);
  for (int i = 0; i < n; ++i) {
    start[i] = requests[i].first_use;
    end[i] = requests[i].last_use;
    size[i] = align(requests[i].bytes);
  }
  for (int i = 0; i < n; ++i) {
    int root = root_of(requests, i);
    if (root == i) continue;
    end[root] = std::max(end[root], end[i]);
    start[root] = std::min(start[root], start[i]);
  }
  std::vector<int> owners;
  for (int i = 0; i < n; ++i)
    if (requests[i].alias_of < 0 && size[i] > 0) owners.push_back(i);

  // Lower bound: the largest sum of simultaneously live blocks, over every step.
  MemoryPlan plan;
  std::map<int, int64_t> delta;  // step -> change in live bytes
  for (int i : owners) {
    delta[start[i]] += static_cast<int64_t>(size[i]);
    if (end[i] != INT_MAX) delta[end[i] + 1] -= static_cast<int64_t>(size[i]);
  }
  int64_t live = 0;
  for (const auto& [step, d] : delta) {
    live += d;
    plan.lower_bound = std::max<uint64_t>(plan.lower_bound, static_cast<uint64_t>(live));
  }

  // Each block, in a given order, takes the best-fitting gap among placed blocks whose lifetimes
  // overlap it. No one order wins on every graph (largest-first leaves gaps when similar sizes
  // have staggered lifetimes, as in ViT), so a few orders are tried and the smallest arena kept.
  auto place = [&](const std::vector<int>& order, std::vector<uint64_t>& offsets) {
    uint64_t arena = 0;
    std::vector<int> placed;
    for (int i : order) {
      std::vector<std::pair<uint64_t, uint64_t>> busy;  // [offset, end) of overlapping blocks
      for (int j : placed)
        if (!(end[j] < start[i] || end[i] < start[j])) busy.push_back({offsets[j], offsets[j] + size[j]});
      std::sort(busy.begin(), busy.end());
      uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cursor = 0;
      for (const auto& [lo, hi] : busy) {
        if (lo > cursor && lo - cursor >= size[i] && lo - cursor < best_gap) { best = cursor; best_gap = lo - cursor; }
        cursor = std::max(cursor, hi);
      }
      offsets[i] = best != UINT64_MAX ? best : cursor;
      arena = std::max(arena, offsets[i] + size[i]);
      placed.push_back(i);
    }
    return arena;
  };
  auto life = [&](int i) { return static_cast<uint64_t>(std::max(1, (end[i] == INT_MAX ? n : end[i]) - start[i] + 1)); };
  const std::vector<std::function<bool(int, int)>> orders = {
      [&](int a, int b) { return size[a] != size[b] ? size[a] > size[b] : start[a] < start[b]; },  // largest first
      [&](int a, int b) {  // largest size x lifetime first
        uint64_t x = size[a] * life(a), y = size[b] * life(b);
        return x != y ? x > y : a < b;
      },
      [&](int a, int b) { return life(a) != life(b) ? life(a) > life(b) : size[a] > size[b]; },  // longest-lived first
      [&](int a, int b) { return start[a] != start[b] ? start[a] < start[b] : size[a] > size[b]; },  // execution order
  };
  plan.arena_bytes = UINT64_MAX;
  for (const auto& cmp : orders) {
    std::vector<int> order = owners;
    std::sort(order.begin(), order.end(), cmp);
    std::vector<uint64_t> offsets(n, 0);
    uint64_t arena = place(order, offsets);
    if (arena < plan.arena_bytes) {
      plan.arena_bytes = arena;
      plan.offsets = std::move(offsets);
    }
    if (plan.arena_bytes == plan.lower_bound) break;  // cannot do better
  }
  for (int i = 0; i < n; ++i) plan.offsets[i] = plan.offsets[root_of(requests, i)];
  return plan;
}

bool is_view_op(const Node& n) {
  if (!n.domain.empty()) return false;
  if (n.op_type == "Dropout") return !(n.inputs.size() > 2 && n.inputs[2]) && !(n.outputs.size() > 1 && n.outputs[1]);
  return n.op_type == "Reshape" || n.op_type == "Flatten" || n.op_type == "Squeeze" || n.op_type == "Unsqueeze" ||
         n.op_type == "Identity";
}

GraphMemoryPlan plan_graph_memory(const Graph& g, const ValueShapes& shapes, const std::function<bool(size_t)>& runs,
                                  const std::function<bool(size_t)>& is_view) {
  std::set<const Value*> io(g.inputs.begin(), g.inputs.end());
  io.insert(g.outputs.begin(), g.outputs.end());
  auto bytes_of = [&](const Value* v) -> uint64_t {
    auto it = shapes.dims.find(v);
    if (it == shapes.dims.end()) return 0;
    uint64_t n = 1;
    for (int64_t d : it->second) n *= static_cast<uint64_t>(d);
    return static_cast<uint64_t>(dtype_nbytes(v->dtype, static_cast<int64_t>(n)));  // packed types: ceil
  };
  GraphMemoryPlan out;
  std::vector<PlanRequest> reqs;
  std::map<const Value*, int> req_of;
  const auto& nodes = g.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!runs(i)) continue;
    const Node& n = *nodes[i];
    auto touch = [&](const Value* in) {
      auto it = in ? req_of.find(in) : req_of.end();
      if (it != req_of.end()) reqs[it->second].last_use = static_cast<int>(i);
    };
    for (const Value* in : n.inputs) touch(in);
    for (const Value* in : n.implicit_inputs()) touch(in);
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const Value* o = n.outputs[k];
      if (!o || io.count(o) || shapes.values.count(o)) continue;
      PlanRequest r;
      r.bytes = bytes_of(o);
      r.first_use = r.last_use = static_cast<int>(i);
      const Value* src = n.inputs.empty() ? nullptr : n.inputs[0];
      if (k == 0 && src && is_view(i)) {
        out.aliases[o] = src;
        auto it = req_of.find(src);
        if (it == req_of.end()) continue;  // a view of an input, weight or constant: no block
        r.alias_of = it->second;
      }
      req_of[o] = static_cast<int>(reqs.size());
      reqs.push_back(r);
    }
  }
  MemoryPlan plan = plan_memory(reqs);
  for (const auto& [v, r] : req_of) out.offsets[v] = plan.offsets[r];
  out.arena_bytes = plan.arena_bytes;
  out.lower_bound = plan.lower_bound;
  return out;
}

}  // namespace kiln
