#include "coordinator/sequence.h"

#include <algorithm>
#include <utility>

#include "coordinator/prefix_hash.h"

namespace strata::coordinator {

Sequence::Sequence(SequenceRequest request, int64_t arrival)
    : id_(request.id), priority_(request.priority), arrival_(arrival),
      max_tokens_(request.max_tokens), prompt_len_(static_cast<int32_t>(request.prompt.size())),
      stop_token_ids_(std::move(request.stop_token_ids)), tokens_(std::move(request.prompt)) {}

bool Sequence::IsStopToken(int32_t token) const {
  return std::find(stop_token_ids_.begin(), stop_token_ids_.end(), token) != stop_token_ids_.end();
}

const std::vector<uint64_t>& Sequence::FullBlockHashes(int32_t block_size) {
  ExtendPrefixHashes(tokens_, block_size, &block_hashes_);
  return block_hashes_;
}

}  // namespace strata::coordinator
