// The quant kernels on the host harness (kernels/cuda/harness/host_launch.h): same
// Params, launch shapes and kernel source as kernels/cuda/quant/launchers.h, with
// host pointers. For parity tests, not for speed.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/quant/cast_params.h"
#include "kernels/cuda/quant/fp8_dequantize_params.h"
#include "kernels/cuda/quant/fp8_quantize_params.h"

namespace strata::cuda {

absl::Status HostRunCast(const CastParams& p);
absl::Status HostRunFp8Quantize(const Fp8QuantizeParams& p);
absl::Status HostRunFp8Dequantize(const Fp8DequantizeParams& p);

}  // namespace strata::cuda
