#include "kernels/cuda/launchers.h"
#include "kernels/cuda/bias_add_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchBiasAdd(const BiasAddParams& p, cudaStream_t stream) {
  if (CheckBiasAdd(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows == 0 || p.cols == 0) return cudaSuccess;
  const KernelShape s = BiasAddShape(p);
  BiasAddKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
