// Internal interface between the matmul driver (matmul.cc) and the per-ISA
// kernels (matmul_scalar.cc, matmul_avx2.cc, matmul_kquants_avx2.cc,
// matmul_avx512.cc).
//
// A kernel computes a contiguous range of output rows for all tokens:
//
//   out[t * out_stride + r] = dot(W row r, activation row t)
//                                       row_begin <= r < row_end, t < tokens
//
// The activation format depends on the weight type (quant_blocks.h):
//   F32, F16, BF16      -> the f32 input as given (act_stride = cols * 4)
//   Q4_0, Q4_1, Q8_0    -> Q8Act32 rows (act_stride = Q8Act32RowBytes(cols)),
//                          except Q4_0/Q4_1 at the AVX-512 level: Q8Act32Nib
//                          rows (see UsesNibbleActivations)
//   Q4_K, Q5_K, Q6_K    -> BlockQ8ActK rows (act_stride = cols / 256 * 292)
// Kernels may tile rows x tokens as they like (each weight row should be read
// from memory once per call).
//
// ODR note: each ISA unit defines its kernels in an anonymous namespace (and
// its helpers `static`) and exports only its lookup function, so no function
// compiled with AVX-512 flags can be picked by the linker for another path.
#pragma once

#include <cstdint>

#include "common/tensor_type.h"

namespace strata {

struct KernelArgs {
  int64_t cols;
  const uint8_t* weight;  // row 0
  int64_t weight_stride;  // bytes between rows
  const void* act;        // token 0
  int64_t act_stride;     // bytes between tokens
  int64_t tokens;
  float* out;             // out[t * out_stride + r]
  int64_t out_stride;     // floats
};

using MatMulKernel = void (*)(const KernelArgs& args, int64_t row_begin, int64_t row_end);

// nullptr when the ISA has no kernel of its own for `type` (the driver then
// falls back to the next lower level). The AVX2 and AVX-512 lookups must be
// called only when the CPU supports that level.
MatMulKernel ScalarKernel(TensorType type);
MatMulKernel Avx2Kernel(TensorType type);
MatMulKernel Avx512Kernel(TensorType type);
// True when the kernel for (level, type) reads Q8Act32Nib activations.
static inline bool UsesNibbleActivations(bool avx512, TensorType type) {
  return avx512 && (type == TensorType::kQ4_0 || type == TensorType::kQ4_1);
}
// The k-quant part of the AVX2 table (matmul_kquants_avx2.cc).
MatMulKernel Avx2KQuantKernel(TensorType type);

}  // namespace strata
