// Decode of values of a 32-value block of a weight_quant.h type, shared by the
// dequantise and the weight-only GEMV kernels. The arithmetic is
// kernels/cpu/dequantize.cc's, in the same order and without FMA contraction
// (__fmul_rn/__fadd_rn on the device), and the f16 scales decode with the
// branch-free KvF16ToF32Fast (equal in value to F16ToF32, subnormals included), so
// each value is bit-identical to the CPU DequantizeRow (NaN scales: NaN, payload
// may differ).
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
  const float d = KvF16ToF32Fast(*reinterpret_cast<const uint16_t*>(blk));
  switch (q) {
    case WeightQuant::kQ8_0:
      return QMul(static_cast<float>(static_cast<int8_t>(blk[2 + j])), d);
    case WeightQuant::kQ4_0: {
      const uint8_t b = blk[2 + (j & 15)];
      const int nib = j < 16 ? (b & 0xF) : (b >> 4);
      return QMul(d, static_cast<float>(nib - 8));
    }
    case WeightQuant::kQ4_1: {
      const float m = KvF16ToF32Fast(*reinterpret_cast<const uint16_t*>(blk + 2));
      const uint8_t b = blk[4 + (j & 15)];
      const int nib = j < 16 ? (b & 0xF) : (b >> 4);
      return QAdd(QMul(d, static_cast<float>(nib)), m);
    }
  }
  return 0.0f;
}

// The two values of the block at `blk` that lane l < 16 of a half-warp owns, so
// that the 16 lanes read the block's quants as one contiguous run:
//   Q8_0:       elements 2l and 2l + 1   (the 16-bit word at qs + 2l)
//   Q4_0/Q4_1:  elements l and l + 16    (the low and high nibble of byte qs[l])
struct QPair {
  int e0, e1;    // element indices within the block
  float w0, w1;  // their values
};

__device__ __forceinline__ QPair QBlockPair(const uint8_t* blk, WeightQuant q, int l) {
  const float d = KvF16ToF32Fast(*reinterpret_cast<const uint16_t*>(blk));
  if (q == WeightQuant::kQ8_0) {
    const uint16_t two = *reinterpret_cast<const uint16_t*>(blk + 2 + 2 * l);
    return {2 * l, 2 * l + 1, QMul(static_cast<float>(static_cast<int8_t>(two & 0xFF)), d),
            QMul(static_cast<float>(static_cast<int8_t>(two >> 8)), d)};
  }
  if (q == WeightQuant::kQ4_0) {
    const uint8_t b = blk[2 + l];
    return {l, l + 16, QMul(d, static_cast<float>((b & 0xF) - 8)), QMul(d, static_cast<float>((b >> 4) - 8))};
  }
  const float m = KvF16ToF32Fast(*reinterpret_cast<const uint16_t*>(blk + 2));
  const uint8_t b = blk[4 + l];
  return {l, l + 16, QAdd(QMul(d, static_cast<float>(b & 0xF)), m), QAdd(QMul(d, static_cast<float>(b >> 4)), m)};
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
