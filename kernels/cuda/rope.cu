#include "kernels/cuda/launchers.h"
#include "kernels/cuda/rope_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchRope(const RopeParams& p, cudaStream_t stream) {
  if (CheckRope(p) != nullptr) return cudaErrorInvalidValue;
  if (p.tokens * p.n_heads == 0) return cudaSuccess;
  const KernelShape s = RopeShape(p);
  RopeKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
