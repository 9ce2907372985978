// Picks the replica a new request runs on: the least loaded one (fewest
// outstanding requests), ties broken by prefix affinity (the replica that last
// served a prompt starting with the same tokens, whose KV it may still cache),
// then round robin.
//
// Thread ownership: thread-safe (internally locked).
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace strata::coordinator {

struct ReplicaLoad {
  int32_t replica = 0;
  int32_t outstanding = 0;
};

class Router {
 public:
  // Affinity keys hash the first `prefix_tokens` tokens of a prompt (all of a
  // shorter one); the table remembers the latest `capacity` keys.
  explicit Router(int32_t prefix_tokens = 64, size_t capacity = 4096)
      : prefix_tokens_(prefix_tokens), capacity_(capacity) {}

  // `candidates` non-empty. Returns the chosen replica id and remembers it
  // for the prompt's prefix.
  int32_t Pick(const std::vector<ReplicaLoad>& candidates, absl::Span<const int32_t> prompt);

 private:
  uint64_t PrefixKey(absl::Span<const int32_t> prompt) const;

  const int32_t prefix_tokens_;
  const size_t capacity_;
  absl::Mutex mu_;
  std::unordered_map<uint64_t, int32_t> affinity_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> order_ ABSL_GUARDED_BY(mu_);  // insertion order, for eviction
  uint64_t round_robin_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::coordinator
