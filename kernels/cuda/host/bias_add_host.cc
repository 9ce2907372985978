// The same kernel body as bias_add.cu, run by the host harness.
#include "kernels/cuda/bias_add_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunBiasAdd(const BiasAddParams& p) {
  if (const char* why = CheckBiasAdd(p)) return absl::InvalidArgumentError(why);
  if (p.rows == 0 || p.cols == 0) return absl::OkStatus();
  const KernelShape s = BiasAddShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { BiasAddKernel(p); });
}

}  // namespace strata::cuda
