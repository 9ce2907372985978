// The prefill kernels on the host harness (kernels/cuda/harness/host_launch.h): same
// Params, launch shape and kernel source as kernels/cuda/prefill/launchers.h, with
// host pointers; Mma16816 runs its fragment-exchange emulation. For parity tests.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/prefill/prefill_attention_params.h"

namespace strata::cuda {

absl::Status HostRunPrefillAttention(const PrefillAttentionParams& p);

}  // namespace strata::cuda
