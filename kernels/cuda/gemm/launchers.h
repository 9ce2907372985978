// Device launchers of the gemm group's kernels (nvcc, strata_kernels_cuda_gemm). Each
// validates its Params (cudaErrorInvalidValue when bad), launches on `stream` and
// returns cudaGetLastError(); empty work returns cudaSuccess without a launch. All
// pointers are device pointers. The cuBLASLt GEMM itself is cublaslt_gemm.h.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/gemm/column_epilogue_params.h"
#include "kernels/cuda/gemm/dequant_bf16_params.h"
#include "kernels/cuda/gemm/qgemv_params.h"

namespace strata::cuda {

cudaError_t LaunchDequantBf16(const DequantBf16Params& p, cudaStream_t stream);
cudaError_t LaunchQGemv(const QGemvParams& p, cudaStream_t stream);
cudaError_t LaunchColumnEpilogue(const ColumnEpilogueParams& p, cudaStream_t stream);

}  // namespace strata::cuda
