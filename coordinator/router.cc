#include "coordinator/router.h"

#include <algorithm>

namespace strata::coordinator {

uint64_t Router::PrefixKey(absl::Span<const int32_t> prompt) const {
  // FNV-1a over the prefix's token ids.
  uint64_t h = 1469598103934665603ull;
  const size_t n = std::min(prompt.size(), static_cast<size_t>(prefix_tokens_));
  for (size_t i = 0; i < n; ++i) {
    uint32_t t = static_cast<uint32_t>(prompt[i]);
    for (int b = 0; b < 4; ++b) {
      h ^= (t >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h ^ n;
}

int32_t Router::Pick(const std::vector<ReplicaLoad>& candidates, absl::Span<const int32_t> prompt) {
  int32_t least = candidates[0].outstanding;
  for (const ReplicaLoad& c : candidates) least = std::min(least, c.outstanding);
  std::vector<int32_t> tied;
  for (const ReplicaLoad& c : candidates) {
    if (c.outstanding == least) tied.push_back(c.replica);
  }
  const uint64_t key = PrefixKey(prompt);
  absl::MutexLock lock(&mu_);
  int32_t chosen = -1;
  if (auto it = affinity_.find(key); it != affinity_.end()) {
    if (std::find(tied.begin(), tied.end(), it->second) != tied.end()) chosen = it->second;
  }
  if (chosen < 0) chosen = tied[round_robin_++ % tied.size()];
  auto [it, inserted] = affinity_.insert_or_assign(key, chosen);
  if (inserted) {
    order_.push_back(key);
    if (order_.size() > capacity_) {
      affinity_.erase(order_.front());
      order_.pop_front();
    }
  }
  return chosen;
}

}  // namespace strata::coordinator
