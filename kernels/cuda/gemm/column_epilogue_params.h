// Parameters of the column epilogue that runs after a cuBLASLt GEMM when cuBLASLt
// cannot fuse the step (gemm_plan.h): FP8 per-channel weight scales and f32 biases
// on an FP8 or BF16-output GEMM. In place on Y [rows, cols] (row-major):
//
//   y[r, c] = y[r, c] * scale[c] + bias[c]     (scale, bias optional; f32 arithmetic,
//                                               no FMA; a BF16 Y is re-rounded RNE)
#pragma once

#include <cstdint>

namespace strata::cuda {

enum class EpilogueDtype : int32_t { kF32, kBF16 };

struct ColumnEpilogueParams {
  void* y = nullptr;              // f32 or bf16 bits
  EpilogueDtype dtype = EpilogueDtype::kF32;
  int64_t rows = 0;               // M (tokens)
  int64_t cols = 0;               // N (output features)
  int64_t y_stride = 0;           // elements between rows (>= cols)
  const float* scale = nullptr;   // [cols] or null (1)
  const float* bias = nullptr;    // [cols] or null (0)
};

}  // namespace strata::cuda
