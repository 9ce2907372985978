// The same kernel body as dequant_bf16.cu, run by the host harness.
#include "kernels/cuda/gemm/dequant_bf16_kernel.cuh"

#include "kernels/cuda/gemm/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunDequantBf16(const DequantBf16Params& p) {
  if (const char* why = CheckDequantBf16(p)) return absl::InvalidArgumentError(why);
  if (p.rows == 0 || p.cols == 0) return absl::OkStatus();
  const KernelShape s = DequantBf16Shape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { DequantBf16Kernel(p); });
}

}  // namespace strata::cuda
