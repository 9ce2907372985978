#include "kernels/cuda/launchers.h"
#include "kernels/cuda/residual_add_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchResidualAdd(const ResidualAddParams& p, cudaStream_t stream) {
  if (CheckResidualAdd(p) != nullptr) return cudaErrorInvalidValue;
  if (p.n == 0) return cudaSuccess;
  const KernelShape s = ResidualAddShape(p);
  ResidualAddKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
