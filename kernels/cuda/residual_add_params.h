// Parameters of the residual add: x[i] += y[i] for i < n (f32), CpuBackend::Add
// (worker/backend/cpu_backend.cc) on the device. One f32 add per element, so the
// result is bit-identical to the CPU's.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct ResidualAddParams {
  float* x = nullptr;        // [n], updated in place
  const float* y = nullptr;  // [n]; may alias x exactly (x = 2x), not partially
  int64_t n = 0;
};

}  // namespace strata::cuda
