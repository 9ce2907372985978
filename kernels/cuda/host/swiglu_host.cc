// The same kernel body as swiglu.cu, run by the host harness.
#include "kernels/cuda/swiglu_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunSwiGlu(const SwiGluParams& p) {
  if (const char* why = CheckSwiGlu(p)) return absl::InvalidArgumentError(why);
  if (p.n == 0) return absl::OkStatus();
  const KernelShape s = SwiGluShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { SwiGluKernel(p); });
}

}  // namespace strata::cuda
