// out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace strata {

struct SwiGluParams {
  const float* gate = nullptr;
  const float* up = nullptr;
  float* out = nullptr;  // may alias gate or up
  int64_t n = 0;
};

absl::Status LaunchSwiGlu(const SwiGluParams& p);

}  // namespace strata
