// The same kernel body as fp8_dequantize.cu, run by the host harness.
#include "kernels/cuda/quant/fp8_dequantize_kernel.cuh"

#include "kernels/cuda/quant/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunFp8Dequantize(const Fp8DequantizeParams& p) {
  if (const char* why = CheckFp8Dequantize(p)) return absl::InvalidArgumentError(why);
  if (p.rows * p.cols == 0) return absl::OkStatus();
  const KernelShape s = Fp8DequantizeShape(p);
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { Fp8DequantizeKernel(p); });
}

}  // namespace strata::cuda
