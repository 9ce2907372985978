#include "kernels/cuda/quant/fp8_dequantize_kernel.cuh"
#include "kernels/cuda/quant/launchers.h"

namespace strata::cuda {

cudaError_t LaunchFp8Dequantize(const Fp8DequantizeParams& p, cudaStream_t stream) {
  if (CheckFp8Dequantize(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows * p.cols == 0) return cudaSuccess;
  const KernelShape s = Fp8DequantizeShape(p);
  Fp8DequantizeKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
