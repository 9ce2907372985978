// Parameters of the FP8 E4M3 dequantisation [rows, cols] (row-major, contiguous):
// out = scale * e4m3(code), with scale = scales[0] (per_row false: per-tensor or
// static scale) or scales[row] (per_row true), bit-exact with the CPU reference
// DequantizeRowFp8 (kernels/cpu/kv_quant.h). Code 0x7F/0xFF and a NaN scale give NaN.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct Fp8DequantizeParams {
  const uint8_t* codes = nullptr;  // [rows, cols]
  const float* scales = nullptr;   // [1] or [rows]
  float* out = nullptr;            // [rows, cols]
  int64_t rows = 0;
  int64_t cols = 0;
  bool per_row = false;
};

}  // namespace strata::cuda
