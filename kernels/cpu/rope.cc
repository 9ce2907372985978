#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace strata {

absl::Status LaunchRope(const RopeParams& p) {
  if (!p.x || !p.positions || !p.inv_freq || p.head_dim <= 0 || p.head_dim % 2 != 0) {
    return absl::InvalidArgumentError("Rope: null pointer or odd head dim");
  }
  const int64_t half = p.head_dim / 2;
  const int64_t stride = p.token_stride ? p.token_stride : p.n_heads * p.head_dim;
  std::vector<float> cs(2 * half);
  for (int64_t t = 0; t < p.tokens; ++t) {
    const double pos = p.positions[t];
    for (int64_t i = 0; i < half; ++i) {
      const double a = pos * p.inv_freq[i];
      cs[2 * i] = static_cast<float>(std::cos(a));
      cs[2 * i + 1] = static_cast<float>(std::sin(a));
    }
    for (int64_t h = 0; h < p.n_heads; ++h) {
      float* x = p.x + t * stride + h * p.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t i0 = p.neox ? i : 2 * i;
        const int64_t i1 = p.neox ? i + half : 2 * i + 1;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace strata
