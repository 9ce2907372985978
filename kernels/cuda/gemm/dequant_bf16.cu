#include "kernels/cuda/gemm/dequant_bf16_kernel.cuh"
#include "kernels/cuda/gemm/launchers.h"

namespace strata::cuda {

cudaError_t LaunchDequantBf16(const DequantBf16Params& p, cudaStream_t stream) {
  if (CheckDequantBf16(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows == 0 || p.cols == 0) return cudaSuccess;
  const KernelShape s = DequantBf16Shape(p);
  DequantBf16Kernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
