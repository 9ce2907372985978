// The same kernel body as column_epilogue.cu, run by the host harness.
#include "kernels/cuda/gemm/column_epilogue_kernel.cuh"

#include "kernels/cuda/gemm/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunColumnEpilogue(const ColumnEpilogueParams& p) {
  if (const char* why = CheckColumnEpilogue(p)) return absl::InvalidArgumentError(why);
  if (p.rows == 0 || p.cols == 0 || (!p.scale && !p.bias)) return absl::OkStatus();
  const KernelShape s = ColumnEpilogueShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { ColumnEpilogueKernel(p); });
}

}  // namespace strata::cuda
