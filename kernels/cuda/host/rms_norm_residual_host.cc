// The same kernel body as rms_norm_residual.cu, run by the host harness.
#include "kernels/cuda/rms_norm_residual_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunRmsNormResidual(const RmsNormResidualParams& p) {
  if (const char* why = CheckRmsNormResidual(p)) return absl::InvalidArgumentError(why);
  if (p.rows == 0) return absl::OkStatus();
  const KernelShape s = RmsNormResidualShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { RmsNormResidualKernel(p); });
}

}  // namespace strata::cuda
