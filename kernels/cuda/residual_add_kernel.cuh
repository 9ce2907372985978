// Residual add: a grid-stride loop over float4 units when x and y are both 16-byte
// aligned (then the last n % 4 elements one by one), else over single floats.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/residual_add_params.h"

namespace strata::cuda {

inline constexpr unsigned kResidualAddThreads = 256;
// About one wave on an H100 (132 SMs x 8 blocks of 256); the loop strides beyond.
inline constexpr int64_t kResidualAddMaxBlocks = 1024;

inline const char* CheckResidualAdd(const ResidualAddParams& p) {
  if (!p.x || !p.y) return "ResidualAdd: null pointer";
  if (p.n < 0) return "ResidualAdd: negative n";
  return nullptr;
}

inline KernelShape ResidualAddShape(const ResidualAddParams& p) {
  const int64_t units = (p.n + 3) / 4;  // float4 units (the scalar path strides over more)
  int64_t blocks = (units + kResidualAddThreads - 1) / kResidualAddThreads;
  if (blocks > kResidualAddMaxBlocks) blocks = kResidualAddMaxBlocks;
  if (blocks < 1) blocks = 1;
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(kResidualAddThreads), 0};
}

__global__ void __launch_bounds__(kResidualAddThreads) ResidualAddKernel(ResidualAddParams p) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t scalar_from = 0;
  if (reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && reinterpret_cast<uintptr_t>(p.y) % 16 == 0) {
    float4* x4 = reinterpret_cast<float4*>(p.x);
    const float4* y4 = reinterpret_cast<const float4*>(p.y);
    const int64_t units = p.n / 4;
    for (int64_t i = first; i < units; i += step) {
      float4 a = x4[i];
      const float4 b = y4[i];
      a.x += b.x;
      a.y += b.y;
      a.z += b.z;
      a.w += b.w;
      x4[i] = a;
    }
    scalar_from = units * 4;
  }
  for (int64_t i = scalar_from + first; i < p.n; i += step) p.x[i] += p.y[i];
}

}  // namespace strata::cuda
