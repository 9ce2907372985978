// The same kernel body as prefill_attention_*.cu, run by the host harness.
#include "kernels/cuda/prefill/prefill_attention_kernel.cuh"

#include "kernels/cuda/prefill/host/host_ops.h"

namespace strata::cuda {

namespace {

template <KvDtype DT>
absl::Status RunTyped(const PrefillAttentionParams& p) {
  const KernelShape s = PrefillAttentionShape(p);
  if (p.kv.head_dim == 64) {
    return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                                 [&] { PrefillAttentionKernel<64, DT>(p); });
  }
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { PrefillAttentionKernel<128, DT>(p); });
}

}  // namespace

absl::Status HostRunPrefillAttention(const PrefillAttentionParams& p) {
  if (const char* why = CheckPrefillAttention(p)) return absl::InvalidArgumentError(why);
  if (p.n_tiles == 0) return absl::OkStatus();
  switch (p.kv.dtype) {
    case KvDtype::kBF16: return RunTyped<KvDtype::kBF16>(p);
    case KvDtype::kF16: return RunTyped<KvDtype::kF16>(p);
    case KvDtype::kF32: return RunTyped<KvDtype::kF32>(p);
    case KvDtype::kFp8E4M3: return RunTyped<KvDtype::kFp8E4M3>(p);
    case KvDtype::kFp8E4M3Unscaled: return RunTyped<KvDtype::kFp8E4M3Unscaled>(p);
    case KvDtype::kInt8: return RunTyped<KvDtype::kInt8>(p);
  }
  return absl::InvalidArgumentError("PrefillAttention: unknown KV dtype");
}

}  // namespace strata::cuda
