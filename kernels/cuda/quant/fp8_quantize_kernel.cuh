// FP8 E4M3 quantisation (fp8_quantize_params.h). Three kernels:
//   Fp8AmaxKernel           grid-stride max of |x| bits, block max, one atomicMax
//                           per block into *amax_bits            (kPerTensor, 1st)
//   Fp8QuantizeTensorKernel grid-stride encode with one scale    (kPerTensor 2nd, kStatic)
//   Fp8QuantizeRowsKernel   one block per row: block max, then encode (kPerRow)
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/quant/fp8_quantize_params.h"

namespace strata::cuda {

inline constexpr int kFp8Threads = 256;
inline constexpr int64_t kFp8MaxBlocks = 4096;
inline constexpr uint32_t kF32InfBits = 0x7F800000u;

// A dynamic scale and how to encode with it (see fp8_quantize_params.h).
struct Fp8Scale {
  enum Kind : int { kFinite, kZero, kNonFinite } kind;
  float scale;  // what is stored in scales[]
};

__host__ __device__ __forceinline__ Fp8Scale Fp8ScaleFromAmax(uint32_t amax_bits) {
  if (amax_bits >= kF32InfBits) return Fp8Scale{Fp8Scale::kNonFinite, KvBitsToF32(0x7FC00000u)};
  if (amax_bits == 0) return Fp8Scale{Fp8Scale::kZero, 0.0f};
  return Fp8Scale{Fp8Scale::kFinite, KvBitsToF32(amax_bits) / 448.0f};
}

__host__ __device__ __forceinline__ uint8_t Fp8Encode(float x, const Fp8Scale& s) {
  switch (s.kind) {
    case Fp8Scale::kFinite: return KvF32ToE4M3(x / s.scale);
    case Fp8Scale::kZero: return 0;
    case Fp8Scale::kNonFinite: return (KvF32ToBits(x) & 0x7FFFFFFFu) < kF32InfBits ? 0 : 0x7F;
  }
  return 0;
}

// Max over the block of v, returned to every thread. Preconditions as
// BlockReduceSum (kernels/cuda/block_reduce.cuh): 1-D block, multiple of 32, all call.
__device__ __forceinline__ uint32_t BlockReduceMaxU32(uint32_t v) {
  __shared__ uint32_t warp_max[32];
  __shared__ uint32_t total;
  const unsigned lane = threadIdx.x % 32u;
  const unsigned warp = threadIdx.x / 32u;
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (lane == 0) warp_max[warp] = v;
  __syncthreads();
  if (warp == 0) {
    uint32_t t = lane < blockDim.x / 32u ? warp_max[lane] : 0u;
    for (int o = 16; o > 0; o >>= 1) t = max(t, __shfl_xor_sync(0xffffffffu, t, o));
    if (lane == 0) total = t;
  }
  __syncthreads();
  const uint32_t r = total;
  __syncthreads();
  return r;
}

inline const char* CheckFp8Quantize(const Fp8QuantizeParams& p) {
  if (p.rows < 0 || p.cols < 0) return "Fp8Quantize: negative shape";
  if (p.cols > 0 && p.rows > (int64_t{1} << 62) / p.cols) return "Fp8Quantize: shape overflows";
  if (p.rows * p.cols == 0) return nullptr;
  if (!p.x || !p.codes) return "Fp8Quantize: null x/codes";
  switch (p.mode) {
    case Fp8QuantizeMode::kPerTensor:
      if (!p.scales || !p.amax_bits) return "Fp8Quantize: per-tensor needs scales and amax_bits";
      return nullptr;
    case Fp8QuantizeMode::kPerRow:
      if (!p.scales) return "Fp8Quantize: per-row needs scales";
      if (p.rows > 0x7fffffff) return "Fp8Quantize: per-row over 2^31-1 rows";
      return nullptr;
    case Fp8QuantizeMode::kStatic:
      if (!p.static_scale) return "Fp8Quantize: static mode needs static_scale";
      return nullptr;
  }
  return "Fp8Quantize: unknown mode";
}

// Grid-stride shape for Fp8AmaxKernel and Fp8QuantizeTensorKernel.
inline KernelShape Fp8FlatShape(const Fp8QuantizeParams& p) {
  const int64_t n = p.rows * p.cols;
  int64_t blocks = (n + kFp8Threads - 1) / kFp8Threads;
  blocks = blocks < 1 ? 1 : (blocks > kFp8MaxBlocks ? kFp8MaxBlocks : blocks);
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(kFp8Threads), 0};
}

inline KernelShape Fp8RowsShape(const Fp8QuantizeParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.rows)), dim3(kFp8Threads), 0};
}

__global__ void __launch_bounds__(kFp8Threads) Fp8AmaxKernel(Fp8QuantizeParams p) {
  const int64_t n = p.rows * p.cols;
  uint32_t m = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    m = max(m, KvF32ToBits(p.x[i]) & 0x7FFFFFFFu);
  }
  m = BlockReduceMaxU32(m);
  if (threadIdx.x == 0 && m != 0) atomicMax(p.amax_bits, m);
}

__global__ void __launch_bounds__(kFp8Threads) Fp8QuantizeTensorKernel(Fp8QuantizeParams p) {
  Fp8Scale s;
  if (p.mode == Fp8QuantizeMode::kStatic) {
    s = Fp8Scale{Fp8Scale::kFinite, *p.static_scale};
  } else {
    s = Fp8ScaleFromAmax(*p.amax_bits);
    if (blockIdx.x == 0 && threadIdx.x == 0) p.scales[0] = s.scale;
  }
  const int64_t n = p.rows * p.cols;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    p.codes[i] = Fp8Encode(p.x[i], s);
  }
}

__global__ void __launch_bounds__(kFp8Threads) Fp8QuantizeRowsKernel(Fp8QuantizeParams p) {
  const int64_t r = blockIdx.x;
  const float* x = p.x + r * p.cols;
  uint8_t* codes = p.codes + r * p.cols;
  uint32_t m = 0;
  for (int64_t i = threadIdx.x; i < p.cols; i += blockDim.x) {
    m = max(m, KvF32ToBits(x[i]) & 0x7FFFFFFFu);
  }
  const Fp8Scale s = Fp8ScaleFromAmax(BlockReduceMaxU32(m));
  if (threadIdx.x == 0) p.scales[r] = s.scale;
  for (int64_t i = threadIdx.x; i < p.cols; i += blockDim.x) codes[i] = Fp8Encode(x[i], s);
}

}  // namespace strata::cuda
