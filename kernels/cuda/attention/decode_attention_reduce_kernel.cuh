// Paged decode attention, second kernel of a split launch: merges the partitions
// (max, sum, acc) of one (token, query head) from the workspace (log-sum-exp) and
// writes the output row, or NaN and one count per bad token. Separate from
// decode_attention_kernel.cuh so that only one .cu defines it.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/decode_attention_kernel.cuh"

namespace strata::cuda {

// Merges the partitions of one (token, query head): grid (tokens, n_heads).
__global__ void __launch_bounds__(kDecodeThreads) DecodeAttentionReduceKernel(DecodeAttentionParams p) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int tid = static_cast<int>(threadIdx.x);
  const int hd = p.kv.head_dim;
  const int64_t parts = (static_cast<int64_t>(p.max_context) + p.partition_tokens - 1) / p.partition_tokens;
  const int32_t s = p.token_seq[t];
  const int32_t pos = p.positions[t];
  float* out = p.out + (t * p.n_heads + h) * hd;
  const float* ml = static_cast<const float*>(p.workspace) + (t * p.n_heads + h) * parts * 2;
  const float* acc = static_cast<const float*>(p.workspace) + p.tokens * p.n_heads * parts * 2 +
                     (t * p.n_heads + h) * parts * hd;
  bool bad = !DecodeTokenOk(p, s, pos);
  const int64_t n_parts = bad ? 0 : (static_cast<int64_t>(pos) + p.partition_tokens) / p.partition_tokens;
  float m = -INFINITY;
  for (int64_t k = 0; k < n_parts; ++k) {
    bad |= ml[k * 2 + 1] < 0.0f;  // a CTA found a bad block id
    m = fmaxf(m, ml[k * 2]);
  }
  if (bad) {  // uniform over the CTA
    for (int d = tid; d < hd; d += kDecodeThreads) out[d] = DecodeNaN();
    if (h == 0 && tid == 0 && p.bad_tokens) atomicAdd(p.bad_tokens, 1);
    return;
  }
  float denom = 0.0f;
  for (int64_t k = 0; k < n_parts; ++k) denom += expf(ml[k * 2] - m) * ml[k * 2 + 1];
  const float inv = 1.0f / denom;
  for (int d = tid; d < hd; d += kDecodeThreads) {
    float a = 0.0f;
    for (int64_t k = 0; k < n_parts; ++k) a += expf(ml[k * 2] - m) * acc[k * hd + d];
    out[d] = a * inv;
  }
}

}  // namespace strata::cuda
