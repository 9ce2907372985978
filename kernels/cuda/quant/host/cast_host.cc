// The same kernel body as cast.cu, run by the host harness.
#include "kernels/cuda/quant/cast_kernel.cuh"

#include "kernels/cuda/quant/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunCast(const CastParams& p) {
  if (const char* why = CheckCast(p)) return absl::InvalidArgumentError(why);
  if (p.n == 0) return absl::OkStatus();
  const KernelShape s = CastShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes, [&] { CastKernel(p); });
}

}  // namespace strata::cuda
