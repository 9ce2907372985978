// Warp and block sums with warp shuffles + shared memory.
// Preconditions: 1-D blocks whose size is a multiple of 32 (at most 1024), and every
// thread of the block calls BlockReduceSum (it contains __syncthreads()).
#pragma once

#include "kernels/cuda/harness/cuda_compat.h"

namespace strata::cuda {

__device__ __forceinline__ float WarpReduceSum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Returns the sum over the block to every thread.
__device__ __forceinline__ float BlockReduceSum(float v) {
  __shared__ float warp_sums[32];
  __shared__ float total;
  const unsigned lane = threadIdx.x % 32u;
  const unsigned warp = threadIdx.x / 32u;
  v = WarpReduceSum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {  // the whole first warp takes this branch: the shuffle is converged
    float t = lane < blockDim.x / 32u ? warp_sums[lane] : 0.0f;
    t = WarpReduceSum(t);
    if (lane == 0) total = t;
  }
  __syncthreads();
  const float r = total;
  __syncthreads();  // a following call may overwrite warp_sums/total
  return r;
}

}  // namespace strata::cuda
