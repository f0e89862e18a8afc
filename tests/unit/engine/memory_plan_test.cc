#include "backends/memory_plan.h"

#include <gtest/gtest.h>

#include <climits>
#include <random>

namespace kiln::engine {
namespace {

bool overlaps(const PlanRequest& a, const PlanRequest& b) { return !(a.last_use < b.first_use || b.last_use < a.first_use); }

TEST(MemoryPlan, ChainReusesMemory) {
  // x0 -> x1 -> x2 -> x3, each read only by the next step: two blocks suffice.
  std::vector<PlanRequest> r = {{1024, -1, 0, -1}, {1024, 0, 1, -1}, {1024, 1, 2, -1}, {1024, 2, INT_MAX, -1}};
  MemoryPlan p = plan_memory(r);
  EXPECT_EQ(p.lower_bound, 2048u);
  EXPECT_EQ(p.arena_bytes, 2048u);
}

TEST(MemoryPlan, ViewsShareTheirSourceBlockAndExtendItsLife) {
  std::vector<PlanRequest> r = {{512, 0, 1, -1}, {512, 1, 3, 0}, {512, 2, 3, -1}};
  MemoryPlan p = plan_memory(r);
  EXPECT_EQ(p.offsets[1], p.offsets[0]);
  EXPECT_NE(p.offsets[2], p.offsets[0]);  // request 2 overlaps the view's extended life
}

TEST(MemoryPlan, RandomGraphsNeverOverlapLiveBlocksAndStayNearTheBound) {
  std::mt19937 rng(42);
  double worst = 1.0;
  for (int trial = 0; trial < 200; ++trial) {
    int n = 5 + static_cast<int>(rng() % 60);
    std::vector<PlanRequest> r(n);
    for (int i = 0; i < n; ++i) {
      r[i].bytes = 256 * (1 + rng() % 64);
      r[i].first_use = i;
      r[i].last_use = i + 1 + static_cast<int>(rng() % 4);
    }
    MemoryPlan p = plan_memory(r);
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j)
        if (overlaps(r[i], r[j]))
          ASSERT_TRUE(p.offsets[i] + r[i].bytes <= p.offsets[j] || p.offsets[j] + r[j].bytes <= p.offsets[i])
              << "trial " << trial << ": live blocks " << i << " and " << j << " overlap";
    EXPECT_GE(p.arena_bytes, p.lower_bound);
    worst = std::max(worst, double(p.arena_bytes) / double(p.lower_bound));
  }
  EXPECT_LT(worst, 1.5) << "best-fit arena far above the live-bytes lower bound";
}

}  // namespace
}  // namespace kiln::engine
