// Parameters of prefill attention over the paged KV cache: causal attention of a
// variable-length batch of query chunks against every key of their sequences
// (cached prefix + this chunk), FlashAttention-2 style on tensor cores.
//
// Semantics are strata::LaunchPagedAttention (kernels/cpu/paged_attention.h): the KV
// write has already stored the batch's K/V, and query token t of sequence s at
// position p attends to positions 0..p of s, KV head kvh = h / (n_heads / n_kv_heads).
//
// The batch is what a scheduler forms (worker/model/forward_batch.h): the tokens of
// one sequence are contiguous in the token-major q/out arrays and have consecutive
// positions. Per sequence s (index into kv.block_tables):
//
//   q rows   q_start[s] .. q_start[s+1]-1        (q_start: [n_seqs+1], q_start[0] = 0)
//   position q_pos0[s] + (row - q_start[s])      (q_pos0: [n_seqs])
//
// A sequence may have no rows (q_start[s] == q_start[s+1]). Work is cut into tiles of
// kPrefillBlockM "packed rows" per KV head: packed row R of sequence s is query token
// R / group, head kvh * group + R % group (the GQA group's heads share every K/V tile).
// tile_start[s] .. tile_start[s+1]-1 are s's tiles; n_tiles = tile_start[n_seqs].
// BuildPrefillPlan (prefill_plan.h) derives all of these from token_seq/positions.
//
// Precision: Q, the softmax weights P and K/V enter the tensor cores as bf16 (f32
// accumulation and softmax): about 1e-2 absolute on outputs of order 1 against the
// f32 CPU reference (tests/kernels/cuda/prefill states the tolerance and why).
//
// q_start, q_pos0, tile_start and the block tables live in device memory, so the
// kernel checks what it reads: a sequence whose last position lies outside the block
// table, or a block id outside [1, num_blocks), adds to *bad_blocks (when not null)
// and reads zeros instead. Callers treat *bad_blocks != 0 as an internal error.
#pragma once

#include <cstdint>

#include "kernels/paged_kv_view.h"

namespace strata::cuda {

inline constexpr int kPrefillWarpTiles = 2;  // m16 row tiles per warp
inline constexpr int kPrefillBlockM = 128;   // packed query rows per CTA (4 warps x 2 x 16)
inline constexpr int kPrefillThreads = 128;

struct PrefillAttentionParams {
  PagedKvView kv;                 // any KvDtype; head_dim 64 or 128
  const float* q = nullptr;       // [tokens, q_stride] (n_heads * head_dim used)
  int64_t q_stride = 0;           // floats between tokens
  float* out = nullptr;           // [tokens, out_stride] (n_heads * head_dim written)
  int64_t out_stride = 0;
  int32_t n_heads = 0;
  float scale = 1.0f;             // softmax scale, usually 1/sqrt(head_dim)
  const int32_t* q_start = nullptr;     // [kv.n_seqs + 1]
  const int32_t* q_pos0 = nullptr;      // [kv.n_seqs]
  const int32_t* tile_start = nullptr;  // [kv.n_seqs + 1]
  int32_t n_tiles = 0;                  // tile_start[n_seqs] (a host copy: the grid)
  int32_t plan_group = 0;               // n_heads / n_kv_heads the plan was built for
  int* bad_blocks = nullptr;            // optional counter of bad table reads
};

}  // namespace strata::cuda
