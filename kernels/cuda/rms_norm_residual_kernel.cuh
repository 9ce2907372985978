// Fused residual add + RMSNorm: one block per row, 256 threads striding the columns,
// a float sum of squares reduced with warp shuffles and shared memory.
#pragma once

#include <cstddef>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/rms_norm_residual_params.h"

namespace strata::cuda {

// nullptr when p can be launched, else why not.
inline const char* CheckRmsNormResidual(const RmsNormResidualParams& p) {
  if (!p.x || !p.weight || !p.out) return "RmsNormResidual: null pointer";
  if (p.rows < 0 || p.cols <= 0) return "RmsNormResidual: bad shape";
  if (p.rows > 0x7fffffff) return "RmsNormResidual: more than 2^31-1 rows";
  if (p.residual && (p.residual == p.x || p.residual == p.out)) {
    return "RmsNormResidual: residual aliases x or out";
  }
  return nullptr;
}

inline KernelShape RmsNormResidualShape(const RmsNormResidualParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.rows)), dim3(256), 0};
}

__global__ void RmsNormResidualKernel(RmsNormResidualParams p) {
  const int64_t row = blockIdx.x;
  const float* x = p.x + row * p.cols;
  float* res = p.residual ? p.residual + row * p.cols : nullptr;
  float* y = p.out + row * p.cols;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    float h = x[c];
    if (res) {
      h += res[c];
      res[c] = h;
    }
    ss += h * h;
  }
  ss = BlockReduceSum(ss);
  const float scale = rsqrtf(ss / static_cast<float>(p.cols) + p.eps);
  // Each thread re-reads only the columns it wrote, so out may alias x.
  const float* h = res ? res : x;
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) y[c] = h[c] * scale * p.weight[c];
}

}  // namespace strata::cuda
