// Parameters of paged decode attention (FlashDecoding / vLLM paged attention v2
// style) with the semantics of strata::LaunchPagedAttention
// (kernels/cpu/paged_attention.h): for token t of sequence s at position p,
//   out[t, h] = softmax(q[t, h] . K[s, 0..p, kvh] * scale) . V[s, 0..p, kvh]
// with kvh = h / (n_heads / n_kv_heads). Any mix of tokens works (several tokens of
// one sequence at different positions included); the kernel is built for decode,
// where each token reads its whole context once.
//
// Split-KV: with partition_tokens > 0 and max_context > partition_tokens, each
// token's context is cut into partitions of partition_tokens positions computed by
// separate CTAs, which leave (max, sum, unnormalised acc[head_dim]) per query head in
// `workspace`; a second kernel merges them (log-sum-exp). Otherwise one CTA per
// (token, KV head) walks the whole context and writes `out` directly.
//
// Validation happens in the kernels (the tables live in device memory): a token whose
// sequence index is outside [0, n_seqs), whose position is negative or >= max_context,
// or whose context touches a block id outside [1, num_blocks) gets NaN in every
// element of its output row and adds 1 to *bad_tokens (when not null), once per token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>  // paged_kv_view.h iterates a braced list

#include "kernels/paged_kv_view.h"

namespace strata::cuda {

struct DecodeAttentionParams {
  PagedKvView kv;              // any dtype; head_dim % 8 == 0 and <= 256
  const float* q = nullptr;    // [tokens, q_stride] (n_heads * head_dim used)
  int64_t q_stride = 0;
  float* out = nullptr;        // [tokens, n_heads * head_dim]
  int64_t tokens = 0;
  int32_t n_heads = 0;         // a multiple of kv.n_kv_heads
  const int32_t* token_seq = nullptr;  // [tokens] sequence index into block_tables
  const int32_t* positions = nullptr;  // [tokens]
  float scale = 1.0f;
  // Every position must be < max_context (the longest context in the batch, known
  // to the scheduler); it sizes the split grid without reading device memory.
  int32_t max_context = 0;
  int32_t partition_tokens = 512;  // positions per split partition; 0 = no split
  void* workspace = nullptr;       // DecodeAttentionWorkspaceBytes(*this) bytes, 16-aligned
  int* bad_tokens = nullptr;       // optional counter of rejected tokens
};

// Partitions per token of the split grid, or 1 when the launch does not split.
inline int64_t DecodeAttentionPartitions(const DecodeAttentionParams& p) {
  if (p.partition_tokens <= 0 || p.max_context <= p.partition_tokens) return 1;
  return (static_cast<int64_t>(p.max_context) + p.partition_tokens - 1) / p.partition_tokens;
}

// Bytes of workspace the launch needs (0 without a split): per (token, query head,
// partition) a (max, sum) pair and head_dim floats of accumulator.
//
//   ml  [tokens][n_heads][partitions][2]          f32
//   acc [tokens][n_heads][partitions][head_dim]   f32
inline size_t DecodeAttentionWorkspaceBytes(const DecodeAttentionParams& p) {
  const int64_t parts = DecodeAttentionPartitions(p);
  if (parts <= 1 || p.tokens <= 0 || p.n_heads <= 0 || p.kv.head_dim <= 0) return 0;
  return static_cast<size_t>(p.tokens) * static_cast<size_t>(p.n_heads) * static_cast<size_t>(parts) *
         (static_cast<size_t>(p.kv.head_dim) + 2) * sizeof(float);
}

// A partition size for a launch of `tokens` query tokens over n_kv_heads on a GPU
// with `sm_count` SMs: split only as far as needed for about 4 CTAs per SM (a decode
// batch of 64 x 8 KV heads needs no split below 512 positions per partition), never
// below 128 positions (each partition costs a (max, sum, acc) write and merge), and
// at most 512 (the partials stay under ~2% of the KV bytes read at head_dim 128).
// Returns 0 (no split) when one CTA per (token, KV head) already fills the GPU.
inline int32_t SuggestDecodePartitionTokens(int64_t tokens, int32_t n_kv_heads, int32_t max_context,
                                            int32_t sm_count) {
  const int64_t ctas = tokens * n_kv_heads;
  const int64_t want = 4 * static_cast<int64_t>(sm_count);
  if (ctas <= 0 || max_context <= 128 || (ctas >= want && max_context <= 512)) return 0;
  const int64_t parts = ctas >= want ? 1 : (want + ctas - 1) / ctas;
  int64_t part = (static_cast<int64_t>(max_context) + parts - 1) / parts;
  part = (part + 127) / 128 * 128;  // whole 128-position steps
  if (part < 128) part = 128;
  if (part > 512) part = 512;
  return part >= max_context ? 0 : static_cast<int32_t>(part);
}

}  // namespace strata::cuda
