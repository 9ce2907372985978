// The prefix cache's block identity: hash i chains the hashes of blocks
// 0..i-1 with block i's tokens, so it names the whole prefix
// [0, (i+1) * block_size). Only full blocks have one.
//
// absl::Hash is seeded per process, so block contents cannot be crafted from
// outside to collide with another tenant's prefix; hashes mean nothing across
// processes (the cache lives in one coordinator).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace strata::coordinator {

// Appends the hashes of the full blocks of `tokens` beyond the `out->size()`
// already computed (incremental: a growing sequence extends its chain).
void ExtendPrefixHashes(absl::Span<const int32_t> tokens, int32_t block_size, std::vector<uint64_t>* out);

}  // namespace strata::coordinator
