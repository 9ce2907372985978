#include "kernels/cuda/quant/fp8_quantize_kernel.cuh"
#include "kernels/cuda/quant/launchers.h"

namespace strata::cuda {

cudaError_t LaunchFp8Quantize(const Fp8QuantizeParams& p, cudaStream_t stream) {
  if (CheckFp8Quantize(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows * p.cols == 0) return cudaSuccess;
  if (p.mode == Fp8QuantizeMode::kPerRow) {
    const KernelShape s = Fp8RowsShape(p);
    Fp8QuantizeRowsKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
    return cudaGetLastError();
  }
  const KernelShape s = Fp8FlatShape(p);
  if (p.mode == Fp8QuantizeMode::kPerTensor) {
    const cudaError_t err = cudaMemsetAsync(p.amax_bits, 0, sizeof(uint32_t), stream);
    if (err != cudaSuccess) return err;
    Fp8AmaxKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  Fp8QuantizeTensorKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
