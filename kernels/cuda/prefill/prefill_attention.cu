#include "kernels/cuda/prefill/launchers.h"
#include "kernels/cuda/prefill/prefill_attention_launch.cuh"

namespace strata::cuda {

cudaError_t LaunchPrefillAttention(const PrefillAttentionParams& p, cudaStream_t stream) {
  if (CheckPrefillAttention(p) != nullptr) return cudaErrorInvalidValue;
  if (p.n_tiles == 0) return cudaSuccess;
  switch (p.kv.dtype) {
    case KvDtype::kBF16: return LaunchPrefillAttentionTyped<KvDtype::kBF16>(p, stream);
    case KvDtype::kF16: return LaunchPrefillAttentionTyped<KvDtype::kF16>(p, stream);
    case KvDtype::kF32: return LaunchPrefillAttentionTyped<KvDtype::kF32>(p, stream);
    case KvDtype::kFp8E4M3: return LaunchPrefillAttentionTyped<KvDtype::kFp8E4M3>(p, stream);
    case KvDtype::kFp8E4M3Unscaled: return LaunchPrefillAttentionTyped<KvDtype::kFp8E4M3Unscaled>(p, stream);
    case KvDtype::kInt8: return LaunchPrefillAttentionTyped<KvDtype::kInt8>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace strata::cuda
