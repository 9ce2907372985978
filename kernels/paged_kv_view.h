// The paged KV cache as kernels see it: one POD shared by host and device code.
//
// Per layer, K and V each live in a pool of blocks:
//
//   pool[num_blocks][n_kv_heads][block_size][head_dim]     (dtype elements)
//
//   block b, head h, slot s  ->  ((b * n_kv_heads + h) * block_size + s) * head_dim
//
// A sequence's token at position p lives in block block_tables[seq *
// max_blocks_per_seq + p / block_size], slot p % block_size. Block 0 is the
// null block: never handed to a sequence, so a zeroed table entry can't alias
// real data. The coordinator decides block ids; workers only read and write.
#pragma once

#include <cstdint>

namespace strata {

enum class KvDtype : uint8_t { kF32 = 0, kF16 = 1 };

inline int KvDtypeBytes(KvDtype d) { return d == KvDtype::kF32 ? 4 : 2; }

struct PagedKvView {
  void* k = nullptr;  // this layer's K pool
  void* v = nullptr;  // this layer's V pool
  KvDtype dtype = KvDtype::kF16;
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  int32_t n_seqs = 0;

  // Element offset of (block, head, slot); callers have validated the ids.
  int64_t Offset(int64_t block, int64_t head, int64_t slot) const {
    return ((block * n_kv_heads + head) * block_size + slot) * head_dim;
  }
};

}  // namespace strata
