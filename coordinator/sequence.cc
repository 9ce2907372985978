#include "coordinator/sequence.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/types/span.h"

namespace strata::coordinator {

Sequence::Sequence(SequenceRequest request, int64_t arrival)
    : id_(request.id), priority_(request.priority), arrival_(arrival),
      max_tokens_(request.max_tokens), prompt_len_(static_cast<int32_t>(request.prompt.size())),
      stop_token_ids_(std::move(request.stop_token_ids)), tokens_(std::move(request.prompt)) {}

bool Sequence::IsStopToken(int32_t token) const {
  return std::find(stop_token_ids_.begin(), stop_token_ids_.end(), token) != stop_token_ids_.end();
}

const std::vector<uint64_t>& Sequence::FullBlockHashes(int32_t block_size) {
  const size_t full = tokens_.size() / static_cast<size_t>(block_size);
  while (block_hashes_.size() < full) {
    const size_t i = block_hashes_.size();
    const uint64_t parent = i == 0 ? 0x5354524154414b56ull : block_hashes_[i - 1];  // "STRATAKV"
    // absl::Hash is seeded per process, so block contents cannot be crafted to
    // collide with another tenant's prefix from outside.
    block_hashes_.push_back(absl::HashOf(parent, absl::MakeConstSpan(tokens_.data() + i * block_size,
                                                                     static_cast<size_t>(block_size))));
  }
  return block_hashes_;
}

}  // namespace strata::coordinator
