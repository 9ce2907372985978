// Parameters of the bias add: x[r * x_stride + c] += bias[c] for r < rows, c < cols
// (f32), CpuBackend::AddBias (worker/backend/cpu_backend.cc) on the device with
// x_stride = cols. One f32 add per element: bit-identical to the CPU.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct BiasAddParams {
  float* x = nullptr;           // [rows, x_stride] (cols floats used), updated in place
  const float* bias = nullptr;  // [cols]; must not overlap x
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t x_stride = 0;  // floats between rows of x; 0 means cols
};

}  // namespace strata::cuda
