#include "coordinator/prefix_hash.h"

#include "absl/hash/hash.h"

namespace strata::coordinator {

void ExtendPrefixHashes(absl::Span<const int32_t> tokens, int32_t block_size, std::vector<uint64_t>* out) {
  const size_t full = tokens.size() / static_cast<size_t>(block_size);
  while (out->size() < full) {
    const size_t i = out->size();
    const uint64_t parent = i == 0 ? 0x5354524154414b56ull : (*out)[i - 1];  // "STRATAKV"
    out->push_back(absl::HashOf(parent, tokens.subspan(i * block_size, static_cast<size_t>(block_size))));
  }
}

}  // namespace strata::coordinator
