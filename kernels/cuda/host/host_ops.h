// The CUDA kernels run on the host harness (kernels/cuda/harness/host_launch.h): same
// Params, same launch shape, same kernel source as the nvcc launchers in
// kernels/cuda/launchers.h, with host pointers. For parity tests, not for speed.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/bias_add_params.h"
#include "kernels/cuda/embedding_params.h"
#include "kernels/cuda/gather_rows_params.h"
#include "kernels/cuda/residual_add_params.h"
#include "kernels/cuda/rms_norm_residual_params.h"
#include "kernels/cuda/rope_params.h"
#include "kernels/cuda/swiglu_params.h"

namespace strata::cuda {

absl::Status HostRunRmsNormResidual(const RmsNormResidualParams& p);
absl::Status HostRunRope(const RopeParams& p);
absl::Status HostRunSwiGlu(const SwiGluParams& p);
absl::Status HostRunEmbedding(const EmbeddingParams& p);
absl::Status HostRunResidualAdd(const ResidualAddParams& p);
absl::Status HostRunBiasAdd(const BiasAddParams& p);
absl::Status HostRunGatherRows(const GatherRowsParams& p);

}  // namespace strata::cuda
