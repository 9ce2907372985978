// The same kernel bodies as decode_attention*.cu, run by the host harness.
#include "kernels/cuda/attention/decode_attention_kernel.cuh"
#include "kernels/cuda/attention/decode_attention_reduce_kernel.cuh"
#include "kernels/cuda/attention/host/host_ops.h"

namespace strata::cuda {
namespace {

template <KvDtype kDtype>
absl::Status RunMain(const DecodeAttentionParams& p, const DecodeAttentionPlan& plan) {
  return DispatchDecodeAttention<kDtype>(plan, [&](auto kernel) {
    return cuda_host::HostLaunch(plan.main.grid, plan.main.block, plan.main.dynamic_shared_bytes,
                                 [&] { kernel(p); });
  });
}

}  // namespace

absl::Status HostRunDecodeAttention(const DecodeAttentionParams& p) {
  if (const char* why = CheckDecodeAttention(p)) return absl::InvalidArgumentError(why);
  if (p.tokens == 0) return absl::OkStatus();
  const DecodeAttentionPlan plan = PlanDecodeAttention(p);
  absl::Status st;
  switch (p.kv.dtype) {
    case KvDtype::kF32: st = RunMain<KvDtype::kF32>(p, plan); break;
    case KvDtype::kF16: st = RunMain<KvDtype::kF16>(p, plan); break;
    case KvDtype::kBF16: st = RunMain<KvDtype::kBF16>(p, plan); break;
    case KvDtype::kFp8E4M3: st = RunMain<KvDtype::kFp8E4M3>(p, plan); break;
    case KvDtype::kFp8E4M3Unscaled: st = RunMain<KvDtype::kFp8E4M3Unscaled>(p, plan); break;
    case KvDtype::kInt8: st = RunMain<KvDtype::kInt8>(p, plan); break;
  }
  if (!st.ok() || plan.partitions <= 1) return st;
  return cuda_host::HostLaunch(plan.reduce.grid, plan.reduce.block, plan.reduce.dynamic_shared_bytes,
                               [&] { DecodeAttentionReduceKernel(p); });
}

}  // namespace strata::cuda
