// Attention over the paged KV cache for a batch of tokens from different
// sequences at different positions (prefill chunks and decodes mixed).
//
// LaunchKvWrite stores the batch's new K/V rows in their slots; then
// LaunchPagedAttention computes, for token t of sequence s at position p,
//   out[t, h] = softmax(q[t, h] . K[s, 0..p, kvh] * scale) . V[s, 0..p, kvh]
// with kvh = h / (n_heads / n_kv_heads) (grouped-query attention). Causality
// falls out of attending to positions <= p, so the KV write must come first.
//
// KV dtypes: F32, F16, BF16, and the quantised FP8 E4M3 / INT8 with one f32 scale
// per (token, KV head) row (kernels/cpu/kv_quant.h). The write quantises (the
// same scalar code at every SIMD level); attention dequantises on the fly.
// Levels: scalar, AVX2 (head_dim % 8 == 0); AVX-512 CPUs run the AVX2 body.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/paged_kv_view.h"

namespace strata {

struct KvWriteParams {
  PagedKvView kv;
  const float* k = nullptr;  // [tokens, k_stride] (n_kv_heads * head_dim used)
  const float* v = nullptr;
  int64_t k_stride = 0;      // floats between tokens
  int64_t v_stride = 0;
  int64_t tokens = 0;
  const int32_t* token_seq = nullptr;  // [tokens] sequence index into block_tables
  const int32_t* positions = nullptr;  // [tokens]
};

struct PagedAttentionParams {
  PagedKvView kv;
  const float* q = nullptr;  // [tokens, q_stride] (n_heads * head_dim used)
  int64_t q_stride = 0;
  float* out = nullptr;      // [tokens, n_heads * head_dim]
  int64_t tokens = 0;
  int32_t n_heads = 0;
  const int32_t* token_seq = nullptr;
  const int32_t* positions = nullptr;
  float scale = 1.0f;
  ThreadPool* pool = nullptr;
};

// Both validate every sequence index, position and block id first and return
// INVALID_ARGUMENT (naming the token) before touching memory.
absl::Status LaunchKvWrite(const KvWriteParams& p);
absl::Status LaunchPagedAttention(const PagedAttentionParams& p);

// The same at a forced SIMD level (tests, benchmarks); refuses a level the
// CPU lacks. LaunchPagedAttention uses DetectedSimdLevel() (STRATA_SIMD cap).
absl::Status LaunchPagedAttentionWithLevel(const PagedAttentionParams& p, SimdLevel level);

}  // namespace strata
