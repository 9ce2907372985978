// Parameters of the fused residual-add + RMSNorm kernel (plain POD, host and device).
//
// For each row r:
//   h[:]   = x[r, :] + residual[r, :]        (h = x[r, :] when residual is null)
//   residual[r, :] = h                        (written back: the next layer's residual)
//   out[r, :] = h / sqrt(mean(h^2) + eps) * weight[:]
// With residual == nullptr this is kernels/cpu/rms_norm.h exactly.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct RmsNormResidualParams {
  const float* x = nullptr;  // [rows, cols]
  float* residual = nullptr;  // [rows, cols] or null; must not alias x or out
  const float* weight = nullptr;  // [cols]
  float* out = nullptr;  // [rows, cols]; may alias x
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-5f;
};

}  // namespace strata::cuda
