// Device launchers of the prefill group (nvcc-built into strata_kernels_cuda_prefill).
// Validates the Params (cudaErrorInvalidValue when bad), launches on `stream` and
// returns cudaGetLastError(); no tiles returns cudaSuccess without a launch. All
// pointers in the Params are device pointers; n_tiles is a host value.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/prefill/prefill_attention_params.h"

namespace strata::cuda {

cudaError_t LaunchPrefillAttention(const PrefillAttentionParams& p, cudaStream_t stream);

}  // namespace strata::cuda
