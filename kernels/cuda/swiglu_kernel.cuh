// SwiGLU: grid-stride loop, one element per thread per step.
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/swiglu_params.h"

namespace strata::cuda {

inline const char* CheckSwiGlu(const SwiGluParams& p) {
  if (!p.gate || !p.up || !p.out || p.n < 0) return "SwiGlu: bad params";
  return nullptr;
}

inline KernelShape SwiGluShape(const SwiGluParams& p) {
  int64_t blocks = (p.n + 255) / 256;
  if (blocks > 4096) blocks = 4096;
  if (blocks < 1) blocks = 1;
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(256), 0};
}

__global__ void SwiGluKernel(SwiGluParams p) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n;
       i += step) {
    const float g = p.gate[i];
    p.out[i] = g / (1.0f + expf(-g)) * p.up[i];
  }
}

}  // namespace strata::cuda
