// Device launchers of the CUDA kernels (built by nvcc into strata_kernels_cuda).
// Each validates its Params (cudaErrorInvalidValue when bad), launches on `stream`
// and returns cudaGetLastError(); empty work returns cudaSuccess without a launch.
// All pointers are device pointers. Kernels never abort.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/bias_add_params.h"
#include "kernels/cuda/embedding_params.h"
#include "kernels/cuda/gather_rows_params.h"
#include "kernels/cuda/residual_add_params.h"
#include "kernels/cuda/rms_norm_residual_params.h"
#include "kernels/cuda/rope_params.h"
#include "kernels/cuda/swiglu_params.h"

namespace strata::cuda {

cudaError_t LaunchRmsNormResidual(const RmsNormResidualParams& p, cudaStream_t stream);
cudaError_t LaunchRope(const RopeParams& p, cudaStream_t stream);
cudaError_t LaunchSwiGlu(const SwiGluParams& p, cudaStream_t stream);
cudaError_t LaunchEmbedding(const EmbeddingParams& p, cudaStream_t stream);
cudaError_t LaunchResidualAdd(const ResidualAddParams& p, cudaStream_t stream);
cudaError_t LaunchBiasAdd(const BiasAddParams& p, cudaStream_t stream);
cudaError_t LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream);

}  // namespace strata::cuda
