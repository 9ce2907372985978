#include "coordinator/router.h"

#include <algorithm>

namespace strata::coordinator {

int32_t Router::Pick(const std::vector<ReplicaLoad>& candidates) {
  int32_t least = candidates[0].outstanding;
  for (const ReplicaLoad& c : candidates) least = std::min(least, c.outstanding);
  int32_t best_cached = 0;
  for (const ReplicaLoad& c : candidates) {
    if (c.outstanding <= least + load_slack_) best_cached = std::max(best_cached, c.cached_prefix_blocks);
  }
  // Candidates in the winning class: the longest cached prefix among the
  // eligible, or (none cached) the least loaded.
  std::vector<const ReplicaLoad*> pool;
  for (const ReplicaLoad& c : candidates) {
    const bool in = best_cached > 0 ? c.outstanding <= least + load_slack_ && c.cached_prefix_blocks == best_cached
                                    : c.outstanding == least;
    if (in) pool.push_back(&c);
  }
  int32_t pool_least = pool[0]->outstanding;
  for (const ReplicaLoad* c : pool) pool_least = std::min(pool_least, c->outstanding);
  std::vector<int32_t> tied;
  for (const ReplicaLoad* c : pool) {
    if (c->outstanding == pool_least) tied.push_back(c->replica);
  }
  return tied[round_robin_++ % tied.size()];
}

}  // namespace strata::coordinator
