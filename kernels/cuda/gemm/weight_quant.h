// The GGUF block-quantised weight types the CUDA weight-only kernels read (layouts in
// kernels/cpu/quant_blocks.h): 32 values per block, f16 scale (and min) per block.
//
//   Q8_0 (34 B)  x[i] = d * qs[i]                 | d f16 | qs[32] int8       |
//   Q4_0 (18 B)  x[i] = d * (nib[i] - 8)          | d f16 | qs[16]            |
//   Q4_1 (20 B)  x[i] = d * nib[i] + m            | d f16 | m f16 | qs[16]    |
//   nib[j] = qs[j] & 0xF, nib[j + 16] = qs[j] >> 4   (j < 16)
//
// Plain C++ (no absl): included by nvcc. Values are GGML's type ids (TensorType).
#pragma once

#include <cstdint>

// Callable from kernels too (nvcc); plain inline for the host compiler.
#ifdef __CUDACC__
#define STRATA_GEMM_HD __host__ __device__
#else
#define STRATA_GEMM_HD
#endif

namespace strata::cuda {

enum class WeightQuant : int32_t {
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 8,
};

inline constexpr int kWeightQuantBlock = 32;  // values per block

// Bytes per block; 0 for a value outside the enum.
STRATA_GEMM_HD constexpr int64_t WeightQuantBlockBytes(WeightQuant q) {
  return q == WeightQuant::kQ8_0 ? 34 : q == WeightQuant::kQ4_0 ? 18 : q == WeightQuant::kQ4_1 ? 20 : 0;
}

}  // namespace strata::cuda
