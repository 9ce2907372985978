#include "kernels/cuda/launchers.h"
#include "kernels/cuda/swiglu_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchSwiGlu(const SwiGluParams& p, cudaStream_t stream) {
  if (CheckSwiGlu(p) != nullptr) return cudaErrorInvalidValue;
  if (p.n == 0) return cudaSuccess;
  const KernelShape s = SwiGluShape(p);
  SwiGluKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
