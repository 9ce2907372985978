// Host-side planning of a prefill-attention launch (plain C++, no CUDA): from the
// per-token sequence index and position of a forward batch, the per-sequence query
// ranges and the tile prefix sum that PrefillAttentionParams carries.
//
//   token_seq  [ 0 0 0 0 | 1 | 2 2 ]     positions [ 5 6 7 8 | 3 | 0 1 ]
//   q_start    [ 0, 4, 5, 7 ]            q_pos0    [ 5, 3, 0 ]
//   tiles of s = ceil(rows(s) * group / kPrefillBlockM)
//   tile_start [ 0, t0, t0+t1, t0+t1+t2 ]
//
// Preconditions checked (an error string, never an abort): token_seq non-decreasing
// within [0, n_seqs), positions >= 0 and consecutive within a sequence.
// The kernel maps blockIdx.x to its sequence with PrefillTileSequence (a binary search
// over tile_start, prefill_attention_kernel.cuh) and runs each sequence's tiles last
// to first, so the longest causal rows start first.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cuda/prefill/prefill_attention_params.h"

namespace strata::cuda {

struct PrefillPlan {
  std::vector<int32_t> q_start;     // [n_seqs + 1]
  std::vector<int32_t> q_pos0;      // [n_seqs]
  std::vector<int32_t> tile_start;  // [n_seqs + 1]
  int32_t n_tiles = 0;
  int32_t group = 0;
};

// Tiles of one sequence with `rows` query tokens and `group` heads per KV head.
inline int64_t PrefillTileCount(int64_t rows, int32_t group) {
  return (rows * group + kPrefillBlockM - 1) / kPrefillBlockM;
}

// Returns nullptr and fills *plan, or a reason the batch cannot be planned.
inline const char* BuildPrefillPlan(const int32_t* token_seq, const int32_t* positions, int64_t tokens,
                                    int32_t n_seqs, int32_t n_heads, int32_t n_kv_heads,
                                    PrefillPlan* plan) {
  if (n_seqs <= 0 || tokens < 0 || (tokens > 0 && (!token_seq || !positions))) {
    return "PrefillPlan: bad batch shape";
  }
  if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0) {
    return "PrefillPlan: n_heads is not a multiple of n_kv_heads";
  }
  if (tokens > 0x7fffffff) return "PrefillPlan: more than 2^31-1 tokens";
  PrefillPlan p;
  p.group = n_heads / n_kv_heads;
  p.q_start.assign(n_seqs + 1, 0);
  p.q_pos0.assign(n_seqs, 0);
  p.tile_start.assign(n_seqs + 1, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t s = token_seq[t];
    if (s < 0 || s >= n_seqs) return "PrefillPlan: sequence index out of range";
    if (positions[t] < 0) return "PrefillPlan: negative position";
    if (t > 0 && s < token_seq[t - 1]) return "PrefillPlan: tokens not grouped by ascending sequence";
    if (t > 0 && s == token_seq[t - 1]) {
      if (positions[t] != positions[t - 1] + 1) return "PrefillPlan: positions of a sequence not consecutive";
    } else {
      p.q_pos0[s] = positions[t];
    }
    ++p.q_start[s + 1];
  }
  int64_t tiles = 0;
  for (int32_t s = 0; s < n_seqs; ++s) {
    tiles += PrefillTileCount(p.q_start[s + 1], p.group);
    if (tiles > 0x7fffffff) return "PrefillPlan: more than 2^31-1 tiles";
    p.tile_start[s + 1] = static_cast<int32_t>(tiles);
    p.q_start[s + 1] += p.q_start[s];
  }
  p.n_tiles = static_cast<int32_t>(tiles);
  *plan = std::move(p);
  return nullptr;
}

}  // namespace strata::cuda
