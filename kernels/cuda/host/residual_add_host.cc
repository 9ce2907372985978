// The same kernel body as residual_add.cu, run by the host harness.
#include "kernels/cuda/residual_add_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunResidualAdd(const ResidualAddParams& p) {
  if (const char* why = CheckResidualAdd(p)) return absl::InvalidArgumentError(why);
  if (p.n == 0) return absl::OkStatus();
  const KernelShape s = ResidualAddShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { ResidualAddKernel(p); });
}

}  // namespace strata::cuda
