#include "kernels/cuda/sampling/launchers.h"
#include "kernels/cuda/sampling/sample_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchSample(const SampleParams& p, cudaStream_t stream) {
  if (CheckSample(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows == 0) return cudaSuccess;
  const KernelShape s = SampleShape(p);
  SampleKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
