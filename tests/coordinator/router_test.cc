#include "coordinator/router.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

TEST(RouterTest, PicksTheLeastLoaded) {
  Router r;
  std::vector<int32_t> p = {1, 2, 3};
  EXPECT_EQ(r.Pick({{0, 5}, {1, 2}, {2, 7}}, p), 1);
  EXPECT_EQ(r.Pick({{0, 0}, {1, 2}, {2, 7}}, p), 0);
}

TEST(RouterTest, TiesGoToTheReplicaThatServedTheSamePrefix) {
  Router r(/*prefix_tokens=*/4);
  std::vector<int32_t> a = {10, 11, 12, 13, 99};
  std::vector<int32_t> a2 = {10, 11, 12, 13, 42, 43};  // same 4-token prefix
  const int32_t first = r.Pick({{0, 0}, {1, 0}, {2, 0}}, a);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r.Pick({{0, 1}, {1, 1}, {2, 1}}, a2), first);
  // Affinity never beats load.
  const int32_t other = (first + 1) % 3;
  std::vector<ReplicaLoad> loads = {{0, 3}, {1, 3}, {2, 3}};
  loads[other].outstanding = 0;
  EXPECT_EQ(r.Pick(loads, a2), other);
}

TEST(RouterTest, UnrelatedPromptsSpreadRoundRobin) {
  Router r(4);
  std::set<int32_t> seen;
  for (int32_t i = 0; i < 6; ++i) {
    std::vector<int32_t> p = {i * 100, i * 100 + 1, i * 100 + 2, i * 100 + 3};
    seen.insert(r.Pick({{0, 0}, {1, 0}, {2, 0}}, p));
  }
  EXPECT_EQ(seen.size(), 3u);
}

}  // namespace
}  // namespace strata::coordinator
