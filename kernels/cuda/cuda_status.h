// cudaError_t -> absl::Status for the launchers of launchers.h (compiled by the host
// compiler: the .cu files stay free of absl). Usage:
//   RETURN_IF_ERROR(CudaStatus(LaunchRope(p, stream), "Rope"));
// cudaErrorInvalidValue (bad Params) is InvalidArgument; out-of-memory errors are
// ResourceExhausted; anything else is Internal, with cudaGetErrorString's text.
#pragma once

#include <cuda_runtime_api.h>

#include "absl/status/status.h"

namespace strata::cuda {

absl::Status CudaStatus(cudaError_t err, const char* what);

}  // namespace strata::cuda
