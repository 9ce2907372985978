// The one-byte KV dtypes: FP8 E4M3 (scaled and unscaled) and INT8.
#include "kernels/cuda/prefill/prefill_attention_launch.cuh"

namespace strata::cuda {

template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kFp8E4M3>(const PrefillAttentionParams&, cudaStream_t);
template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kFp8E4M3Unscaled>(const PrefillAttentionParams&,
                                                                            cudaStream_t);
template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kInt8>(const PrefillAttentionParams&, cudaStream_t);

}  // namespace strata::cuda
