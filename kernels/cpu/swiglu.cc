#include "kernels/cpu/swiglu.h"

#include <cmath>

namespace strata {

absl::Status LaunchSwiGlu(const SwiGluParams& p) {
  if (!p.gate || !p.up || !p.out || p.n < 0) return absl::InvalidArgumentError("SwiGlu: bad params");
  for (int64_t i = 0; i < p.n; ++i) {
    const float g = p.gate[i];
    p.out[i] = g / (1.0f + std::exp(-g)) * p.up[i];
  }
  return absl::OkStatus();
}

}  // namespace strata
