#include "coordinator/router.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

TEST(RouterTest, WithoutCachedPrefixesPicksTheLeastLoaded) {
  Router r;
  EXPECT_EQ(r.Pick({{0, 5, 0}, {1, 2, 0}, {2, 7, 0}}), 1);
  EXPECT_EQ(r.Pick({{0, 0, 0}, {1, 2, 0}, {2, 7, 0}}), 0);
}

TEST(RouterTest, TiesSpreadRoundRobin) {
  Router r;
  std::set<int32_t> seen;
  for (int i = 0; i < 6; ++i) seen.insert(r.Pick({{0, 1, 0}, {1, 1, 0}, {2, 1, 0}}));
  EXPECT_EQ(seen.size(), 3u);
}

TEST(RouterTest, TheLongestCachedPrefixWinsWithinTheLoadSlack) {
  Router r(/*load_slack=*/2);
  // Replica 2 holds 5 blocks of the prompt and is 2 requests busier: it wins.
  EXPECT_EQ(r.Pick({{0, 3, 0}, {1, 3, 1}, {2, 5, 5}}), 2);
  // Longer prefix beats a shorter one at equal load.
  EXPECT_EQ(r.Pick({{0, 1, 2}, {1, 1, 3}}), 1);
  // Equal prefixes: the less loaded.
  EXPECT_EQ(r.Pick({{0, 4, 3}, {1, 3, 3}}), 1);
}

TEST(RouterTest, LoadBeyondTheSlackBeatsTheCache) {
  Router r(/*load_slack=*/2);
  // Replica 1 caches the prefix but has 3 more requests than replica 0.
  EXPECT_EQ(r.Pick({{0, 1, 0}, {1, 4, 8}}), 0);
  // A shorter cached prefix within the slack still beats none.
  EXPECT_EQ(r.Pick({{0, 1, 0}, {1, 4, 8}, {2, 2, 1}}), 2);
}

}  // namespace
}  // namespace strata::coordinator
