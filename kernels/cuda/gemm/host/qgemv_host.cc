// The same kernel body as qgemv.cu, run by the host harness.
#include "kernels/cuda/gemm/qgemv_kernel.cuh"

#include "kernels/cuda/gemm/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunQGemv(const QGemvParams& p) {
  if (const char* why = CheckQGemv(p)) return absl::InvalidArgumentError(why);
  if (p.n == 0 || p.m == 0) return absl::OkStatus();
  const KernelShape s = QGemvShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes, [&] { QGemvKernel(p); });
}

}  // namespace strata::cuda
