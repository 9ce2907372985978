#include "kernels/cpu/rms_norm.h"

#include <cmath>

namespace strata {

absl::Status LaunchRmsNorm(const RmsNormParams& p) {
  if (!p.x || !p.weight || !p.out || p.rows < 0 || p.cols <= 0) {
    return absl::InvalidArgumentError("RmsNorm: null pointer or bad shape");
  }
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * p.cols;
    float* y = p.out + r * p.cols;
    double ss = 0;
    for (int64_t c = 0; c < p.cols; ++c) ss += static_cast<double>(x[c]) * x[c];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / p.cols + p.eps));
    for (int64_t c = 0; c < p.cols; ++c) y[c] = x[c] * scale * p.weight[c];
  }
  return absl::OkStatus();
}

}  // namespace strata
