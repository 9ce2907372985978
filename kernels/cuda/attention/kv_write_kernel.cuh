// KV-cache write for every KvDtype: one CTA per token, one warp per row (one
// (KV head, K or V) pair of head_dim values), warps looping over the 2 * n_kv_heads
// rows. The scaled dtypes need the row's amax first: each lane takes a strided slice
// of the row, and a warp shuffle reduction combines the lanes' amax and "all finite"
// flag, so a row costs two passes over head_dim floats held in L1.
//
// Tuning note: the write moves tokens * n_kv_heads * head_dim * 2 values per layer,
// tiny next to attention; it is not vectorised.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/attention/kv_write_params.h"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr int kKvWriteThreads = 128;

inline const char* CheckKvWrite(const KvWriteParams& p) {
  const PagedKvView& kv = p.kv;
  if (KvDtypeBytes(kv.dtype) == 0) return "KvWrite: unknown dtype";
  if (!kv.k || !kv.v || !kv.block_tables || !p.k || !p.v || !p.token_seq || !p.positions) {
    return "KvWrite: null pointer";
  }
  if (KvDtypeHasScales(kv.dtype) && (!kv.k_scale || !kv.v_scale)) {
    return "KvWrite: fp8/int8 view without k_scale/v_scale";
  }
  if (kv.num_blocks <= 1 || kv.block_size <= 0 || kv.n_kv_heads <= 0 || kv.head_dim <= 0 ||
      kv.max_blocks_per_seq <= 0 || kv.n_seqs < 0 || p.tokens < 0) {
    return "KvWrite: bad shape";
  }
  const int64_t row = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
  if (p.k_stride < row || p.v_stride < row) return "KvWrite: k/v stride < n_kv_heads*head_dim";
  if (p.tokens > 0x7fffffff) return "KvWrite: more than 2^31-1 tokens";
  return nullptr;
}

inline KernelShape KvWriteShape(const KvWriteParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.tokens)), dim3(kKvWriteThreads), 0};
}

// Stores one row of n = head_dim values `x` as codes at element offset `off` of
// `pool` (and its scale at scales[soff]). Called by all 32 lanes of a warp.
__device__ __forceinline__ void KvWriteRow(KvDtype dtype, void* pool, float* scales, int64_t off,
                                           int64_t soff, const float* x, int n, unsigned lane) {
  switch (dtype) {
    case KvDtype::kF32:
      for (int d = lane; d < n; d += 32) static_cast<float*>(pool)[off + d] = x[d];
      return;
    case KvDtype::kF16:
      for (int d = lane; d < n; d += 32) static_cast<uint16_t*>(pool)[off + d] = KvF32ToF16(x[d]);
      return;
    case KvDtype::kBF16:
      for (int d = lane; d < n; d += 32) static_cast<uint16_t*>(pool)[off + d] = KvF32ToBF16(x[d]);
      return;
    case KvDtype::kFp8E4M3Unscaled:
      for (int d = lane; d < n; d += 32) static_cast<uint8_t*>(pool)[off + d] = KvF32ToE4M3(x[d]);
      return;
    case KvDtype::kFp8E4M3:
    case KvDtype::kInt8:
      break;
  }
  // amax = max |x|, and whether every element is finite (kernels/cpu/kv_quant.h RowAmax).
  float amax = 0.0f;
  int finite = 1;
  for (int d = lane; d < n; d += 32) {
    const float a = fabsf(x[d]);
    finite &= (a <= 3.402823466e+38f) ? 1 : 0;
    amax = a > amax ? a : amax;
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float oa = __shfl_xor_sync(0xffffffffu, amax, o);
    const int of = __shfl_xor_sync(0xffffffffu, finite, o);
    amax = oa > amax ? oa : amax;
    finite &= of;
  }
  const float kNaN = KvBitsToF32(0x7FC00000u);  // std::numeric_limits<float>::quiet_NaN()
  if (dtype == KvDtype::kFp8E4M3) {
    uint8_t* codes = static_cast<uint8_t*>(pool) + off;
    float scale;
    if (!finite) {
      scale = kNaN;
      for (int d = lane; d < n; d += 32) {
        codes[d] = fabsf(x[d]) <= 3.402823466e+38f ? uint8_t{0} : uint8_t{0x7F};
      }
    } else if (amax == 0.0f) {
      scale = 0.0f;
      for (int d = lane; d < n; d += 32) codes[d] = 0;
    } else {
      scale = amax / 448.0f;
      for (int d = lane; d < n; d += 32) codes[d] = KvF32ToE4M3(x[d] / scale);
    }
    if (lane == 0) scales[soff] = scale;
    return;
  }
  int8_t* codes = static_cast<int8_t*>(pool) + off;
  float scale;
  if (!finite || amax == 0.0f) {
    scale = finite ? 0.0f : kNaN;
    for (int d = lane; d < n; d += 32) codes[d] = 0;
  } else {
    scale = amax / 127.0f;
    for (int d = lane; d < n; d += 32) {
      float q = rintf(x[d] / scale);  // round half to even, like std::nearbyint
      q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
      codes[d] = static_cast<int8_t>(q);
    }
  }
  if (lane == 0) scales[soff] = scale;
}

__global__ void __launch_bounds__(kKvWriteThreads) KvWriteKernel(KvWriteParams p) {
  const PagedKvView& kv = p.kv;
  const int64_t t = blockIdx.x;
  const int32_t s = p.token_seq[t];
  const int32_t pos = p.positions[t];
  int32_t block = -1;
  if (s >= 0 && s < kv.n_seqs && pos >= 0 && pos / kv.block_size < kv.max_blocks_per_seq) {
    block = kv.block_tables[static_cast<int64_t>(s) * kv.max_blocks_per_seq + pos / kv.block_size];
  }
  if (block <= 0 || block >= kv.num_blocks) {  // uniform over the CTA: no barrier follows
    if (threadIdx.x == 0 && p.bad_tokens) atomicAdd(p.bad_tokens, 1);
    return;
  }
  const int64_t slot = pos % kv.block_size;
  const unsigned lane = threadIdx.x % 32u;
  const int rows = 2 * kv.n_kv_heads;  // row r: head r / 2, K if r is even else V
  // Every lane of a warp takes the same trip count (the shuffles need the whole warp).
  for (int r = static_cast<int>(threadIdx.x / 32u); r < rows; r += kKvWriteThreads / 32) {
    const int64_t h = r / 2;
    const bool is_k = (r % 2) == 0;
    const float* x = (is_k ? p.k + t * p.k_stride : p.v + t * p.v_stride) + h * kv.head_dim;
    KvWriteRow(kv.dtype, is_k ? kv.k : kv.v, is_k ? kv.k_scale : kv.v_scale, KvRowOffset(kv, block, h, slot),
               KvScaleIndex(kv, block, h, slot), x, kv.head_dim, lane);
  }
}

}  // namespace strata::cuda
