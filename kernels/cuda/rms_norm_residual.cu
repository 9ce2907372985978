#include "kernels/cuda/launchers.h"
#include "kernels/cuda/rms_norm_residual_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchRmsNormResidual(const RmsNormResidualParams& p, cudaStream_t stream) {
  if (CheckRmsNormResidual(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows == 0) return cudaSuccess;
  const KernelShape s = RmsNormResidualShape(p);
  RmsNormResidualKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
