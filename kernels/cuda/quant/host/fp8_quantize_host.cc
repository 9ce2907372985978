// The same kernel bodies as fp8_quantize.cu, run by the host harness.
#include "kernels/cuda/quant/fp8_quantize_kernel.cuh"

#include "kernels/cuda/quant/host/host_ops.h"

namespace strata::cuda {

absl::Status HostRunFp8Quantize(const Fp8QuantizeParams& p) {
  if (const char* why = CheckFp8Quantize(p)) return absl::InvalidArgumentError(why);
  if (p.rows * p.cols == 0) return absl::OkStatus();
  if (p.mode == Fp8QuantizeMode::kPerRow) {
    const KernelShape s = Fp8RowsShape(p);
    return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                                 [&] { Fp8QuantizeRowsKernel(p); });
  }
  const KernelShape s = Fp8FlatShape(p);
  if (p.mode == Fp8QuantizeMode::kPerTensor) {
    *p.amax_bits = 0;  // the device launcher's cudaMemsetAsync
    const absl::Status st = cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                                                  [&] { Fp8AmaxKernel(p); });
    if (!st.ok()) return st;
  }
  return cuda_host::HostLaunch(s.grid, s.block, s.dynamic_shared_bytes,
                               [&] { Fp8QuantizeTensorKernel(p); });
}

}  // namespace strata::cuda
