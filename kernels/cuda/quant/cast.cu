#include "kernels/cuda/quant/cast_kernel.cuh"
#include "kernels/cuda/quant/launchers.h"

namespace strata::cuda {

cudaError_t LaunchCast(const CastParams& p, cudaStream_t stream) {
  if (CheckCast(p) != nullptr) return cudaErrorInvalidValue;
  if (p.n == 0) return cudaSuccess;
  const KernelShape s = CastShape(p);
  CastKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
