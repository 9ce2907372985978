// Internal: per-ISA bodies of LaunchPagedAttention. Each runs tasks
// [begin, end) of (token, KV head) pairs on already-validated params.
#pragma once

#include <cstdint>

#include "kernels/cpu/paged_attention.h"

namespace strata::attention_internal {

void RunTasksScalar(const PagedAttentionParams& p, int64_t begin, int64_t end);
void RunTasksAvx2(const PagedAttentionParams& p, int64_t begin, int64_t end);

}  // namespace strata::attention_internal
