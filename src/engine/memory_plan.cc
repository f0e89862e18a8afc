#include "engine/memory_plan.h"

#include <algorithm>
#include <climits>
#include <map>
#include <numeric>

namespace kiln::engine {

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

  // Largest first; each takes the best-fitting gap among blocks whose lifetimes overlap it.
  std::sort(owners.begin(), owners.end(), [&](int a, int b) {
    return size[a] != size[b] ? size[a] > size[b] : start[a] < start[b];
  });
  plan.offsets.assign(n, 0);
  std::vector<int> placed;
  for (int i : owners) {
    std::vector<std::pair<uint64_t, uint64_t>> busy;  // [offset, end) of overlapping blocks
    for (int j : placed)
      if (!(end[j] < start[i] || end[i] < start[j])) busy.push_back({plan.offsets[j], plan.offsets[j] + size[j]});
    std::sort(busy.begin(), busy.end());
    uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cursor = 0;
    for (const auto& [lo, hi] : busy) {
      if (lo > cursor && lo - cursor >= size[i] && lo - cursor < best_gap) { best = cursor; best_gap = lo - cursor; }
      cursor = std::max(cursor, hi);
    }
    plan.offsets[i] = best != UINT64_MAX ? best : cursor;
    plan.arena_bytes = std::max(plan.arena_bytes, plan.offsets[i] + size[i]);
    placed.push_back(i);
  }
  for (int i = 0; i < n; ++i) plan.offsets[i] = plan.offsets[root_of(requests, i)];
  return plan;
}

}  // namespace kiln::engine
