// Parameters of the weight dequantisation to BF16: a Q8_0/Q4_0/Q4_1 matrix (GGUF
// blocks, weight_quant.h) expanded into BF16 rows, so prefill can run the BF16
// cuBLASLt GEMM (gemm_plan.h) on weights that cuBLAS cannot read.
//
//   dst[r * dst_row_stride + c] = bf16(DequantizeRow(src row r)[c])   (round to nearest even)
#pragma once

#include <cstdint>

#include "kernels/cuda/gemm/weight_quant.h"

namespace strata::cuda {

struct DequantBf16Params {
  WeightQuant quant = WeightQuant::kQ8_0;
  const void* src = nullptr;   // [rows] rows of cols / 32 blocks, 2-byte aligned
  int64_t src_row_stride = 0;  // bytes between rows (>= cols / 32 * block bytes, even)
  int64_t rows = 0;
  int64_t cols = 0;             // multiple of 32
  uint16_t* dst = nullptr;      // bf16 bits [rows, dst_row_stride]
  int64_t dst_row_stride = 0;   // elements (>= cols)
};

}  // namespace strata::cuda
