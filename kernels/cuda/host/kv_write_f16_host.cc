// The same kernel body as kv_write_f16.cu, run by the host harness.
#include "kernels/cuda/kv_write_f16_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunKvWriteF16(const KvWriteF16Params& p) {
  if (const char* why = CheckKvWriteF16(p)) return absl::InvalidArgumentError(why);
  if (p.tokens == 0) return absl::OkStatus();
  const KernelShape s = KvWriteF16Shape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { KvWriteF16Kernel(p); });
}

}  // namespace strata::cuda
