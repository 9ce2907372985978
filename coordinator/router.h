// Picks the replica a new request runs on, from the replicas' load and their
// prefix caches' contents:
//
//   1. eligible = replicas with at most `load_slack` more outstanding requests
//      than the least loaded one;
//   2. among them, the one holding the longest cached prefix of the prompt
//      (its KV is reused, not recomputed), the less loaded on a tie;
//   3. no cached prefix anywhere: the least loaded, round robin on a tie.
//
// Thread ownership: thread-safe (the round-robin counter is atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace strata::coordinator {

struct ReplicaLoad {
  int32_t replica = 0;
  int32_t outstanding = 0;           // requests enqueued and not finished
  int32_t cached_prefix_blocks = 0;  // leading blocks of the prompt in its prefix cache
};

class Router {
 public:
  explicit Router(int32_t load_slack = 2) : load_slack_(load_slack) {}

  // `candidates` non-empty; returns the chosen replica id.
  int32_t Pick(const std::vector<ReplicaLoad>& candidates);

 private:
  const int32_t load_slack_;
  std::atomic<uint64_t> round_robin_{0};
};

}  // namespace strata::coordinator
