// The same kernel body as sample.cu, run by the host harness.
#include "kernels/cuda/sampling/sample_kernel.cuh"

#include "kernels/cuda/sampling/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunSample(const SampleParams& p) {
  if (const char* why = CheckSample(p)) return absl::InvalidArgumentError(why);
  if (p.rows == 0) return absl::OkStatus();
  const KernelShape s = SampleShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes, [&] { SampleKernel(p); });
}

}  // namespace strata::cuda
