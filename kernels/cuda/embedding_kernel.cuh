// Embedding lookup: one block of 256 threads per token, over the token's output row.
//   F32:        float4 copies when the table row, the out row and dim allow, else floats;
//   F16/BF16:   4 halves (one 8-byte load) -> one float4 store when aligned, else 1:1;
//   Q8_0/Q4_*:  16 threads per 32-value block (qblock.cuh's QBlockPair: the half-warp
//               reads the block's quants as one contiguous run), two values each;
//   Q4_K/Q5_K/Q6_K: one value per thread per step (consecutive threads, consecutive
//               values), each decoded from its block as dequantize.cc does;
//   other rank's id: zeros (float4 when aligned).
// Decoding is kernels/cpu/dequantize.cc's arithmetic (see qblock.cuh), bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/embedding_params.h"
#include "kernels/cuda/gemm/qblock.cuh"
#include "kernels/cuda/gemm/weight_quant.h"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr unsigned kEmbeddingThreads = 256;

inline const char* CheckEmbedding(const EmbeddingParams& p) {
  if (!p.table || !p.ids || !p.out) return "Embedding: null pointer";
  if (p.tokens < 0 || p.dim <= 0) return "Embedding: bad shape";
  if (p.tokens > 0x7fffffff) return "Embedding: more than 2^31-1 tokens";
  if (p.out_stride != 0 && p.out_stride < p.dim) return "Embedding: out_stride < dim";
  if (p.vocab_begin < 0 || p.vocab_end < p.vocab_begin) {
    return "Embedding: bad vocab shard (need 0 <= vocab_begin <= vocab_end)";
  }
  if (p.vocab_total < 0 || (p.vocab_total > 0 && p.vocab_total < p.vocab_end)) {
    return "Embedding: vocab_total < vocab_end";
  }
  const int64_t row_bytes = EmbeddingRowBytes(p.dtype, p.dim);
  if (row_bytes == 0) {
    return "Embedding: dtype is not F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K or Q6_K, or "
           "dim is not a multiple of its block (32 values, 256 for k-quants)";
  }
  if (p.row_stride != 0 && p.row_stride < row_bytes) return "Embedding: row_stride < one row";
  // Elements (F32: 4 bytes) and quant blocks (16-bit fields) are read with aligned loads.
  const int64_t align = p.dtype == EmbeddingDtype::kF32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(p.table) % align != 0 || p.row_stride % align != 0) {
    return "Embedding: table or row_stride not aligned to the dtype (4 bytes F32, 2 others)";
  }
  return nullptr;
}

inline KernelShape EmbeddingShape(const EmbeddingParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.tokens)), dim3(kEmbeddingThreads), 0};
}

// Four halves from one 8-byte load (the caller checked 8-byte alignment).
struct alignas(8) EmbeddingHalf4 {
  uint32_t lo, hi;
};

__device__ __forceinline__ EmbeddingHalf4 EmbeddingLoadHalf4(const uint16_t* src) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const EmbeddingHalf4*>(src);
#else
  EmbeddingHalf4 v;
  __builtin_memcpy(&v, src, sizeof(v));
  return v;
#endif
}

__device__ __forceinline__ float EmbeddingHalfToF32(uint32_t h, bool bf16) {
  return bf16 ? KvBF16ToF32(static_cast<uint16_t>(h)) : KvF16ToF32Fast(h);
}

__device__ __forceinline__ bool EmbeddingAligned16(const void* a) {
  return reinterpret_cast<uintptr_t>(a) % 16 == 0;
}

__device__ __forceinline__ void EmbeddingZeroRow(float* dst, int64_t dim) {
  if (dim % 4 == 0 && EmbeddingAligned16(dst)) {
    float4* d4 = reinterpret_cast<float4*>(dst);
    const float4 zero{0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) d4[i] = zero;
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = 0.0f;
  }
}

__device__ __forceinline__ void EmbeddingRowF32(const float* src, float* dst, int64_t dim) {
  if (dim % 4 == 0 && EmbeddingAligned16(src) && EmbeddingAligned16(dst)) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) d4[i] = s4[i];
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
  }
}

__device__ __forceinline__ void EmbeddingRowHalf(const uint16_t* src, float* dst, int64_t dim,
                                                 bool bf16) {
  if (dim % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 8 == 0 && EmbeddingAligned16(dst)) {
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
      const EmbeddingHalf4 h = EmbeddingLoadHalf4(src + 4 * i);  // little-endian halves
      d4[i] = float4{EmbeddingHalfToF32(h.lo & 0xFFFFu, bf16), EmbeddingHalfToF32(h.lo >> 16, bf16),
                     EmbeddingHalfToF32(h.hi & 0xFFFFu, bf16), EmbeddingHalfToF32(h.hi >> 16, bf16)};
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = EmbeddingHalfToF32(src[i], bf16);
  }
}

// Thread t decodes, for blocks b = t/16, t/16 + 16, ..., the pair of values lane t%16
// owns (QBlockPair). blockDim.x is a multiple of 16.
__device__ __forceinline__ void EmbeddingRowQuant(const uint8_t* src, float* dst, int64_t dim,
                                                  WeightQuant q) {
  const int64_t nb = dim / kWeightQuantBlock;
  const int64_t bb = WeightQuantBlockBytes(q);
  const int lane = static_cast<int>(threadIdx.x % 16);
  for (int64_t b = threadIdx.x / 16; b < nb; b += blockDim.x / 16) {
    const QPair v = QBlockPair(src + b * bb, q, lane);
    float* y = dst + b * kWeightQuantBlock;
    y[v.e0] = v.w0;
    y[v.e1] = v.w1;
  }
}

__device__ __forceinline__ float EmbeddingSub(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

__device__ __forceinline__ float EmbeddingF16At(const uint8_t* p) {
  return KvF16ToF32Fast(*reinterpret_cast<const uint16_t*>(p));
}

// Value i < 256 of a Q4_K, Q5_K or Q6_K block (layouts in kernels/cpu/quant_blocks.h),
// with dequantize.cc's operations in its order:
//   Q4_K/Q5_K: (d * sc) * q - (dmin * mn)        Q6_K: (d * sc) * (q - 32)
__device__ __forceinline__ float EmbeddingKQuantValue(const uint8_t* blk, EmbeddingDtype dt, int i) {
  if (dt == EmbeddingDtype::kQ6_K) {
    // | ql[128] | qh[64] | scales[16] int8 | d |: half h = i / 128, quarter k, lane l.
    const int h = i >> 7, k = (i >> 5) & 3, l = i & 31;
    const uint8_t lq = blk[64 * h + l + 32 * (k & 1)];
    const uint8_t hq = blk[128 + 32 * h + l];
    const int q = ((k < 2 ? lq & 0xF : lq >> 4) | (((hq >> (2 * k)) & 3) << 4)) - 32;
    const int8_t sc = static_cast<int8_t>(blk[192 + 8 * h + l / 16 + 2 * k]);
    return QMul(QMul(EmbeddingF16At(blk + 208), static_cast<float>(sc)), static_cast<float>(q));
  }
  // | d | dmin | scales[12] | (Q5_K: qh[32]) | qs[128] |: chunk c of 64 values, whose low
  // nibbles are sub-block 2c and high nibbles sub-block 2c + 1.
  const int c = i >> 6, hi = (i >> 5) & 1, l = i & 31, j = 2 * c + hi;
  const uint8_t* s = blk + 4;
  const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
  const int mn = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  const bool q5 = dt == EmbeddingDtype::kQ5_K;
  const uint8_t b = blk[(q5 ? 48 : 16) + 32 * c + l];
  int q = hi ? b >> 4 : b & 0xF;
  if (q5) q |= ((blk[16 + l] >> j) & 1) << 4;
  const float d1 = QMul(EmbeddingF16At(blk), static_cast<float>(sc));
  const float m1 = QMul(EmbeddingF16At(blk + 2), static_cast<float>(mn));
  return EmbeddingSub(QMul(d1, static_cast<float>(q)), m1);
}

__device__ __forceinline__ void EmbeddingRowKQuant(const uint8_t* src, float* dst, int64_t dim,
                                                   EmbeddingDtype dt) {
  const int64_t bb = dt == EmbeddingDtype::kQ4_K ? 144 : dt == EmbeddingDtype::kQ5_K ? 176 : 210;
  for (int64_t e = threadIdx.x; e < dim; e += blockDim.x) {
    dst[e] = EmbeddingKQuantValue(src + (e / 256) * bb, dt, static_cast<int>(e % 256));
  }
}

__global__ void __launch_bounds__(kEmbeddingThreads) EmbeddingKernel(EmbeddingParams p) {
  const int64_t t = blockIdx.x;
  const int64_t id = p.ids[t];
  const int64_t stride = p.out_stride ? p.out_stride : p.dim;
  float* dst = p.out + t * stride;
  if (id < p.vocab_begin || id >= p.vocab_end) {
    const bool bad = id < 0 || (p.vocab_total > 0 && id >= p.vocab_total);
    if (bad && threadIdx.x == 0 && p.bad_ids) atomicAdd(p.bad_ids, 1);
    EmbeddingZeroRow(dst, p.dim);
    return;
  }
  const int64_t row_stride = p.row_stride ? p.row_stride : EmbeddingRowBytes(p.dtype, p.dim);
  const uint8_t* row = static_cast<const uint8_t*>(p.table) + (id - p.vocab_begin) * row_stride;
  switch (p.dtype) {
    case EmbeddingDtype::kF32:
      EmbeddingRowF32(reinterpret_cast<const float*>(row), dst, p.dim);
      break;
    case EmbeddingDtype::kF16:
    case EmbeddingDtype::kBF16:
      EmbeddingRowHalf(reinterpret_cast<const uint16_t*>(row), dst, p.dim,
                       p.dtype == EmbeddingDtype::kBF16);
      break;
    case EmbeddingDtype::kQ8_0:
    case EmbeddingDtype::kQ4_0:
    case EmbeddingDtype::kQ4_1:
      EmbeddingRowQuant(row, dst, p.dim, static_cast<WeightQuant>(static_cast<int32_t>(p.dtype)));
      break;
    case EmbeddingDtype::kQ4_K:
    case EmbeddingDtype::kQ5_K:
    case EmbeddingDtype::kQ6_K:
      EmbeddingRowKQuant(row, dst, p.dim, p.dtype);
      break;
  }
}

}  // namespace strata::cuda
