// RoPE: grid (tokens, n_heads), each thread rotates pairs of one head. The angle is
// computed in double like the CPU reference (a float angle loses ~1e-4 rad at
// position 4096); a precomputed cos/sin table is the obvious next step for speed.
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/rope_params.h"

namespace strata::cuda {

inline const char* CheckRope(const RopeParams& p) {
  if (!p.x || !p.positions || !p.inv_freq) return "Rope: null pointer";
  if (p.head_dim <= 0 || p.head_dim % 2 != 0) return "Rope: head_dim must be even and > 0";
  if (p.tokens < 0 || p.n_heads < 0) return "Rope: bad shape";
  if (p.tokens > 0x7fffffff || p.n_heads > 65535) return "Rope: tokens or heads over limit";
  return nullptr;
}

inline KernelShape RopeShape(const RopeParams& p) {
  const int64_t half = p.head_dim / 2;
  const unsigned threads = half >= 128 ? 128u : static_cast<unsigned>((half + 31) / 32 * 32);
  return KernelShape{dim3(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.n_heads)),
                     dim3(threads), 0};
}

__global__ void RopeKernel(RopeParams p) {
  const int64_t t = blockIdx.x;
  const int64_t head = blockIdx.y;
  const int64_t half = p.head_dim / 2;
  const int64_t stride = p.token_stride ? p.token_stride : p.n_heads * p.head_dim;
  float* x = p.x + t * stride + head * p.head_dim;
  const double pos = p.positions[t];
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double a = pos * static_cast<double>(p.inv_freq[i]);
    const float c = static_cast<float>(cos(a));
    const float s = static_cast<float>(sin(a));
    const int64_t i0 = p.neox ? i : 2 * i;
    const int64_t i1 = p.neox ? i + half : 2 * i + 1;
    const float u = x[i0], v = x[i1];
    x[i0] = u * c - v * s;
    x[i1] = u * s + v * c;
  }
}

}  // namespace strata::cuda
