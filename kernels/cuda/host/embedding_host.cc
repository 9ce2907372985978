// The same kernel body as embedding.cu, run by the host harness.
#include "kernels/cuda/embedding_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunEmbedding(const EmbeddingParams& p) {
  if (const char* why = CheckEmbedding(p)) return absl::InvalidArgumentError(why);
  if (p.tokens == 0) return absl::OkStatus();
  const KernelShape s = EmbeddingShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { EmbeddingKernel(p); });
}

}  // namespace strata::cuda
