// Device launchers of the attention kernel group (built by nvcc into
// strata_kernels_cuda_attention). Each validates its Params (cudaErrorInvalidValue
// when bad), launches on `stream` and returns cudaGetLastError(); empty work returns
// cudaSuccess without a launch. All pointers are device pointers. Kernels never abort;
// bad tokens are counted in Params::bad_tokens.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/attention/decode_attention_params.h"
#include "kernels/cuda/attention/kv_write_params.h"

namespace strata::cuda {

// Stores the batch's K/V rows for every KvDtype (kv_write_params.h).
cudaError_t LaunchKvWrite(const KvWriteParams& p, cudaStream_t stream);

// Paged decode attention (decode_attention_params.h): one kernel, or two with a split
// (p.workspace of DecodeAttentionWorkspaceBytes(p) bytes).
cudaError_t LaunchDecodeAttention(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace strata::cuda
