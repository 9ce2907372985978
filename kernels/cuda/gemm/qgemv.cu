#include "kernels/cuda/gemm/launchers.h"
#include "kernels/cuda/gemm/qgemv_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchQGemv(const QGemvParams& p, cudaStream_t stream) {
  if (CheckQGemv(p) != nullptr) return cudaErrorInvalidValue;
  if (p.n == 0 || p.m == 0) return cudaSuccess;
  const KernelShape s = QGemvShape(p);
  QGemvKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
