// Parameters of the weight-only quantised skinny GEMM for decode:
//
//   y[t, r] = sum_c W[r, c] * x[t, c]     t < m <= 8, r < n, c < k
//
// W is a Q8_0/Q4_0/Q4_1 matrix (weight_quant.h) read directly, dequantised in
// registers; x and y are f32; accumulation is f32. Unlike the CPU LaunchMatMul, the
// activations are NOT quantised to 8 bits: the result is the f32 dot product of the
// dequantised weights (the CPU ReferenceMatMul's semantics).
#pragma once

#include <cstdint>

#include "kernels/cuda/gemm/weight_quant.h"

namespace strata::cuda {

inline constexpr int kQGemvMaxM = 8;

struct QGemvParams {
  WeightQuant quant = WeightQuant::kQ8_0;
  const void* w = nullptr;    // [n] rows of k / 32 blocks, 2-byte aligned
  int64_t w_row_stride = 0;   // bytes (even)
  int64_t n = 0;              // output features (rows of W)
  int64_t k = 0;              // input features, multiple of 32
  const float* x = nullptr;   // [m, x_stride]
  int64_t x_stride = 0;       // floats (>= k)
  int64_t m = 0;              // tokens, 0..kQGemvMaxM
  float* y = nullptr;         // [m, y_stride]
  int64_t y_stride = 0;       // floats (>= n)
};

}  // namespace strata::cuda
