// The same kernel body as rope.cu, run by the host harness.
#include "kernels/cuda/rope_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunRope(const RopeParams& p) {
  if (const char* why = CheckRope(p)) return absl::InvalidArgumentError(why);
  if (p.tokens*p.n_heads == 0) return absl::OkStatus();
  const KernelShape s = RopeShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { RopeKernel(p); });
}

}  // namespace strata::cuda
