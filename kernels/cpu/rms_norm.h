// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight[:]
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace strata {

struct RmsNormParams {
  const float* x = nullptr;       // [rows, cols]
  const float* weight = nullptr;  // [cols]
  float* out = nullptr;           // [rows, cols]; may alias x
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-5f;
};

absl::Status LaunchRmsNorm(const RmsNormParams& p);

}  // namespace strata
