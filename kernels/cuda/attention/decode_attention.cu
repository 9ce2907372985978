#include "kernels/cuda/attention/decode_attention_launch.cuh"
#include "kernels/cuda/attention/decode_attention_reduce_kernel.cuh"
#include "kernels/cuda/attention/launchers.h"

namespace strata::cuda {

cudaError_t LaunchDecodeAttention(const DecodeAttentionParams& p, cudaStream_t stream) {
  if (CheckDecodeAttention(p) != nullptr) return cudaErrorInvalidValue;
  if (p.tokens == 0) return cudaSuccess;
  const DecodeAttentionPlan plan = PlanDecodeAttention(p);
  cudaError_t e = cudaErrorInvalidValue;
  switch (p.kv.dtype) {
    case KvDtype::kF32: e = LaunchDecodeAttentionMain<KvDtype::kF32>(p, plan, stream); break;
    case KvDtype::kF16: e = LaunchDecodeAttentionMain<KvDtype::kF16>(p, plan, stream); break;
    case KvDtype::kBF16: e = LaunchDecodeAttentionMain<KvDtype::kBF16>(p, plan, stream); break;
    case KvDtype::kFp8E4M3: e = LaunchDecodeAttentionMain<KvDtype::kFp8E4M3>(p, plan, stream); break;
    case KvDtype::kFp8E4M3Unscaled:
      e = LaunchDecodeAttentionMain<KvDtype::kFp8E4M3Unscaled>(p, plan, stream);
      break;
    case KvDtype::kInt8: e = LaunchDecodeAttentionMain<KvDtype::kInt8>(p, plan, stream); break;
  }
  if (e != cudaSuccess || plan.partitions <= 1) return e;
  DecodeAttentionReduceKernel<<<plan.reduce.grid, plan.reduce.block, plan.reduce.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
