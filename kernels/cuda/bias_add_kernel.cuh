// Bias add: a grid-stride loop over the rows x cols elements, as float4 units when
// cols, x_stride and both pointers allow (16-byte aligned rows), else single floats.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/bias_add_params.h"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr unsigned kBiasAddThreads = 256;
// About one wave on an H100 (132 SMs x 8 blocks of 256); the loop strides beyond.
inline constexpr int64_t kBiasAddMaxBlocks = 1024;

inline const char* CheckBiasAdd(const BiasAddParams& p) {
  if (!p.x || !p.bias) return "BiasAdd: null pointer";
  if (p.rows < 0 || p.cols < 0) return "BiasAdd: negative rows or cols";
  if (p.x_stride != 0 && p.x_stride < p.cols) return "BiasAdd: x_stride < cols";
  return nullptr;
}

inline KernelShape BiasAddShape(const BiasAddParams& p) {
  const int64_t units = p.rows * ((p.cols + 3) / 4);  // float4 units (scalar: strides more)
  int64_t blocks = (units + kBiasAddThreads - 1) / kBiasAddThreads;
  if (blocks > kBiasAddMaxBlocks) blocks = kBiasAddMaxBlocks;
  if (blocks < 1) blocks = 1;
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(kBiasAddThreads), 0};
}

__global__ void __launch_bounds__(kBiasAddThreads) BiasAddKernel(BiasAddParams p) {
  const int64_t stride = p.x_stride ? p.x_stride : p.cols;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const bool vec = p.cols % 4 == 0 && stride % 4 == 0 &&
                   reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(p.bias) % 16 == 0;
  if (vec) {
    const int64_t per_row = p.cols / 4, total = p.rows * per_row;
    const float4* b4 = reinterpret_cast<const float4*>(p.bias);
    for (int64_t e = first; e < total; e += step) {
      const int64_t r = e / per_row, c = e - r * per_row;
      float4* xp = reinterpret_cast<float4*>(p.x + r * stride) + c;
      float4 a = *xp;
      const float4 b = b4[c];
      a.x += b.x;
      a.y += b.y;
      a.z += b.z;
      a.w += b.w;
      *xp = a;
    }
  } else {
    const int64_t total = p.rows * p.cols;
    for (int64_t e = first; e < total; e += step) {
      const int64_t r = e / p.cols, c = e - r * p.cols;
      p.x[r * stride + c] += p.bias[c];
    }
  }
}

}  // namespace strata::cuda
