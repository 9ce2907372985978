// Decode of one 32-value block of a weight_quant.h type, shared by the dequantise and
// the weight-only GEMV kernels. The arithmetic is kernels/cpu/dequantize.cc's, in the
// same order and without FMA contraction (__fmul_rn/__fadd_rn on the device), so each
// value is bit-identical to the CPU DequantizeRow.
//
// Blocks are only 2-byte aligned (34/18/20 bytes): read with 16-bit loads.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/gemm/weight_quant.h"
#include "kernels/cuda/harness/cuda_compat.h"

// `#pragma unroll` for nvcc only (g++ warns about pragmas it does not know).
#ifdef __CUDACC__
#define STRATA_GEMM_UNROLL _Pragma("unroll")
#else
#define STRATA_GEMM_UNROLL
#endif

namespace strata::cuda {

__host__ __device__ __forceinline__ float QMul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

__host__ __device__ __forceinline__ float QAdd(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// Value j < 32 of the block at `blk`.
__device__ __forceinline__ float QBlockValue(const uint8_t* blk, WeightQuant q, int j) {
  const float d = KvF16ToF32(*reinterpret_cast<const uint16_t*>(blk));
  switch (q) {
    case WeightQuant::kQ8_0:
      return QMul(static_cast<float>(static_cast<int8_t>(blk[2 + j])), d);
    case WeightQuant::kQ4_0: {
      const uint8_t b = blk[2 + (j & 15)];
      const int nib = j < 16 ? (b & 0xF) : (b >> 4);
      return QMul(d, static_cast<float>(nib - 8));
    }
    case WeightQuant::kQ4_1: {
      const float m = KvF16ToF32(*reinterpret_cast<const uint16_t*>(blk + 2));
      const uint8_t b = blk[4 + (j & 15)];
      const int nib = j < 16 ? (b & 0xF) : (b >> 4);
      return QAdd(QMul(d, static_cast<float>(nib)), m);
    }
  }
  return 0.0f;
}

// All 32 values of the block at `blk` into w[0..32).
__device__ __forceinline__ void QDecodeBlock(const uint8_t* blk, WeightQuant q, float* w) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(blk);
  const float d = KvF16ToF32(h[0]);
  if (q == WeightQuant::kQ8_0) {
STRATA_GEMM_UNROLL
    for (int i = 0; i < 16; ++i) {
      const uint16_t two = h[1 + i];
      w[2 * i] = QMul(static_cast<float>(static_cast<int8_t>(two & 0xFF)), d);
      w[2 * i + 1] = QMul(static_cast<float>(static_cast<int8_t>(two >> 8)), d);
    }
    return;
  }
  const bool q41 = q == WeightQuant::kQ4_1;
  const float m = q41 ? KvF16ToF32(h[1]) : 0.0f;
  const uint16_t* qs = h + (q41 ? 2 : 1);
STRATA_GEMM_UNROLL
  for (int i = 0; i < 8; ++i) {
    const uint16_t two = qs[i];
    const int lo0 = two & 0xF, hi0 = (two >> 4) & 0xF, lo1 = (two >> 8) & 0xF, hi1 = two >> 12;
    if (q41) {
      w[2 * i] = QAdd(QMul(d, static_cast<float>(lo0)), m);
      w[2 * i + 16] = QAdd(QMul(d, static_cast<float>(hi0)), m);
      w[2 * i + 1] = QAdd(QMul(d, static_cast<float>(lo1)), m);
      w[2 * i + 17] = QAdd(QMul(d, static_cast<float>(hi1)), m);
    } else {
      w[2 * i] = QMul(d, static_cast<float>(lo0 - 8));
      w[2 * i + 16] = QMul(d, static_cast<float>(hi0 - 8));
      w[2 * i + 1] = QMul(d, static_cast<float>(lo1 - 8));
      w[2 * i + 17] = QMul(d, static_cast<float>(hi1 - 8));
    }
  }
}

// Common checks of a quantised weight operand; nullptr when fine.
inline const char* CheckQuantWeight(WeightQuant q, const void* w, int64_t row_stride, int64_t rows,
                                    int64_t cols) {
  const int64_t bb = WeightQuantBlockBytes(q);
  if (bb == 0) return "weight quant is not Q8_0, Q4_0 or Q4_1";
  if (!w) return "null weight pointer";
  if (rows < 0 || cols < 0) return "negative rows or cols";
  if (cols % kWeightQuantBlock != 0) return "cols is not a multiple of 32 (the block size)";
  if (row_stride < cols / kWeightQuantBlock * bb) return "weight row stride < one row of blocks";
  if (row_stride % 2 != 0 || reinterpret_cast<uintptr_t>(w) % 2 != 0) {
    return "weight pointer or row stride not 2-byte aligned";
  }
  return nullptr;
}

}  // namespace strata::cuda
