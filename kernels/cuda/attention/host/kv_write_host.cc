// The same kernel body as kv_write.cu, run by the host harness.
#include "kernels/cuda/attention/kv_write_kernel.cuh"

#include "kernels/cuda/attention/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunKvWrite(const KvWriteParams& p) {
  if (const char* why = CheckKvWrite(p)) return absl::InvalidArgumentError(why);
  if (p.tokens == 0) return absl::OkStatus();
  const KernelShape s = KvWriteShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes, [&] { KvWriteKernel(p); });
}

}  // namespace strata::cuda
