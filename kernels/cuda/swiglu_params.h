// Parameters of the SwiGLU kernel: out[i] = silu(gate[i]) * up[i],
// silu(g) = g / (1 + exp(-g)) (kernels/cpu/swiglu.h semantics).
#pragma once

#include <cstdint>

namespace strata::cuda {

struct SwiGluParams {
  const float* gate = nullptr;
  const float* up = nullptr;
  float* out = nullptr;  // may alias gate or up
  int64_t n = 0;
};

}  // namespace strata::cuda
