// Device launchers of the quant group (built by nvcc into strata_kernels_cuda_quant):
// activation casts and FP8 E4M3 quantise/dequantise for the GEMM path. Conventions
// of kernels/cuda/launchers.h: bad Params -> cudaErrorInvalidValue, empty work ->
// cudaSuccess without a launch, else cudaGetLastError(); device pointers only.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/quant/cast_params.h"
#include "kernels/cuda/quant/fp8_dequantize_params.h"
#include "kernels/cuda/quant/fp8_quantize_params.h"

namespace strata::cuda {

cudaError_t LaunchCast(const CastParams& p, cudaStream_t stream);
// kPerTensor: a cudaMemsetAsync of *amax_bits and two kernels on `stream`.
cudaError_t LaunchFp8Quantize(const Fp8QuantizeParams& p, cudaStream_t stream);
cudaError_t LaunchFp8Dequantize(const Fp8DequantizeParams& p, cudaStream_t stream);

}  // namespace strata::cuda
