// nvcc only: the typed launch of PrefillAttentionKernel, instantiated once per KV
// dtype in its own .cu (prefill_attention_<dtype>.cu) to keep each compile small.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/prefill/prefill_attention_kernel.cuh"

namespace strata::cuda {

// Params already checked, n_tiles > 0.
template <KvDtype DT>
cudaError_t LaunchPrefillAttentionTyped(const PrefillAttentionParams& p, cudaStream_t stream) {
  const KernelShape s = PrefillAttentionShape(p);
  if (p.kv.head_dim == 64) {
    PrefillAttentionKernel<64, DT><<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  } else {
    PrefillAttentionKernel<128, DT><<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  }
  return cudaGetLastError();
}

extern template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kBF16>(const PrefillAttentionParams&, cudaStream_t);
extern template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kF16>(const PrefillAttentionParams&, cudaStream_t);
extern template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kF32>(const PrefillAttentionParams&, cudaStream_t);
extern template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kFp8E4M3>(const PrefillAttentionParams&,
                                                                           cudaStream_t);
extern template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kFp8E4M3Unscaled>(const PrefillAttentionParams&,
                                                                                   cudaStream_t);
extern template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kInt8>(const PrefillAttentionParams&, cudaStream_t);

}  // namespace strata::cuda
