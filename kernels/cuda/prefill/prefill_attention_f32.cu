#include "kernels/cuda/prefill/prefill_attention_launch.cuh"

namespace strata::cuda {

template cudaError_t LaunchPrefillAttentionTyped<KvDtype::kF32>(const PrefillAttentionParams&, cudaStream_t);

}  // namespace strata::cuda
