// Device launcher of the sampling group (built by nvcc into strata_kernels_cuda_sampling).
// Conventions of kernels/cuda/launchers.h: bad Params -> cudaErrorInvalidValue, no
// rows -> cudaSuccess without a launch, else cudaGetLastError(); device pointers only.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/sampling/sample_params.h"

namespace strata::cuda {

// One token (and its logprob) per row; see sample_params.h for the chain.
cudaError_t LaunchSample(const SampleParams& p, cudaStream_t stream);

}  // namespace strata::cuda
