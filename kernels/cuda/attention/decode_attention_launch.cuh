// nvcc only: the main decode attention kernel of one KvDtype, launched by
// decode_attention.cu and instantiated in one decode_attention_<dtype>.cu each
// (one file per dtype keeps each nvcc run small: 4 kernels x 2 architectures).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/attention/decode_attention_kernel.cuh"

namespace strata::cuda {

template <KvDtype kDtype>
cudaError_t LaunchDecodeAttentionMain(const DecodeAttentionParams& p, const DecodeAttentionPlan& plan,
                                      cudaStream_t stream) {
  return DispatchDecodeAttention<kDtype>(plan, [&](auto kernel) {
    kernel<<<plan.main.grid, plan.main.block, plan.main.dynamic_shared_bytes, stream>>>(p);
    return cudaGetLastError();
  });
}

#define STRATA_DECODE_ATTENTION_MAIN(kDtype)                                                        \
  template cudaError_t LaunchDecodeAttentionMain<kDtype>(const DecodeAttentionParams&,              \
                                                         const DecodeAttentionPlan&, cudaStream_t)

extern STRATA_DECODE_ATTENTION_MAIN(KvDtype::kF32);
extern STRATA_DECODE_ATTENTION_MAIN(KvDtype::kF16);
extern STRATA_DECODE_ATTENTION_MAIN(KvDtype::kBF16);
extern STRATA_DECODE_ATTENTION_MAIN(KvDtype::kFp8E4M3);
extern STRATA_DECODE_ATTENTION_MAIN(KvDtype::kFp8E4M3Unscaled);
extern STRATA_DECODE_ATTENTION_MAIN(KvDtype::kInt8);

}  // namespace strata::cuda
