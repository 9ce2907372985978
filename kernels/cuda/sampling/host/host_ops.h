// The sampling kernel on the host harness (kernels/cuda/harness/host_launch.h): same
// Params, launch shape and kernel source as kernels/cuda/sampling/launchers.h, with
// host pointers. For parity tests, not for speed.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/sampling/sample_params.h"

namespace strata::cuda {

absl::Status HostRunSample(const SampleParams& p);

}  // namespace strata::cuda
