// FP8 E4M3 dequantisation (fp8_dequantize_params.h): grid (column blocks, rows),
// threads stride over the row's columns, so no per-element division.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/quant/fp8_dequantize_params.h"

namespace strata::cuda {

inline constexpr int kFp8DequantThreads = 256;
inline constexpr int64_t kFp8DequantMaxColBlocks = 64;
inline constexpr int64_t kFp8DequantMaxRowBlocks = 65535;  // grid.y limit; rows stride

inline const char* CheckFp8Dequantize(const Fp8DequantizeParams& p) {
  if (p.rows < 0 || p.cols < 0) return "Fp8Dequantize: negative shape";
  if (p.cols > 0 && p.rows > (int64_t{1} << 62) / p.cols) return "Fp8Dequantize: shape overflows";
  if (p.rows * p.cols == 0) return nullptr;
  if (!p.codes || !p.scales || !p.out) return "Fp8Dequantize: null pointer";
  return nullptr;
}

inline KernelShape Fp8DequantizeShape(const Fp8DequantizeParams& p) {
  int64_t x = (p.cols + kFp8DequantThreads - 1) / kFp8DequantThreads;
  x = x > kFp8DequantMaxColBlocks ? kFp8DequantMaxColBlocks : (x < 1 ? 1 : x);
  const int64_t y = p.rows > kFp8DequantMaxRowBlocks ? kFp8DequantMaxRowBlocks : (p.rows < 1 ? 1 : p.rows);
  return KernelShape{dim3(static_cast<unsigned>(x), static_cast<unsigned>(y)), dim3(kFp8DequantThreads),
                     0};
}

__global__ void __launch_bounds__(kFp8DequantThreads) Fp8DequantizeKernel(Fp8DequantizeParams p) {
  for (int64_t r = blockIdx.y; r < p.rows; r += gridDim.y) {
    const float scale = p.scales[p.per_row ? r : 0];
    const uint8_t* codes = p.codes + r * p.cols;
    float* out = p.out + r * p.cols;
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < p.cols;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      out[c] = scale * KvE4M3ToF32(codes[c]);
    }
  }
}

}  // namespace strata::cuda
