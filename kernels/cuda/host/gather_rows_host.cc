// The same kernel body as gather_rows.cu, run by the host harness.
#include "kernels/cuda/gather_rows_kernel.cuh"

#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunGatherRows(const GatherRowsParams& p) {
  if (const char* why = CheckGatherRows(p)) return absl::InvalidArgumentError(why);
  if (p.n_rows == 0 || p.cols == 0) return absl::OkStatus();
  const KernelShape s = GatherRowsShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { GatherRowsKernel(p); });
}

}  // namespace strata::cuda
