// Internal interface between the matmul driver (matmul.cc) and the per-ISA
// kernels (matmul_scalar.cc, matmul_avx2.cc, matmul_avx512.cc, ...).
//
// A row kernel computes one weight row against a group of tokens:
//
//   out[t * out_stride] = dot(W row, activation row t)      t < ntok
//
// `act` points at the first token's activation row, `act_stride` is the byte
// distance between tokens. The activation format depends on the weight type:
//   F32, F16, BF16      -> f32 input as given (act_stride = cols * 4)
//   Q4_0, Q4_1, Q8_0    -> BlockQ8Act32 rows (quantize_activations.h)
//   Q4_K, Q5_K, Q6_K    -> BlockQ8ActK rows
// Kernels may process several tokens per pass over the weight row (the row
// stays in L1) but must handle any ntok >= 1.
//
// ODR note: each ISA unit defines its kernels in an anonymous namespace and
// exports only its lookup function, so no inline/template function compiled
// with AVX-512 flags can be picked by the linker for another path.
#pragma once

#include <cstdint>

#include "common/tensor_type.h"

namespace strata {

using RowKernel = void (*)(int64_t cols, const void* w_row, const void* act, int64_t act_stride,
                           int64_t ntok, float* out, int64_t out_stride);

// nullptr when the ISA has no kernel of its own for `type` (the driver then
// falls back to the next lower level). The AVX2 and AVX-512 lookups must be
// called only when the CPU supports that level.
RowKernel ScalarRowKernel(TensorType type);
RowKernel Avx2RowKernel(TensorType type);
RowKernel Avx512RowKernel(TensorType type);
// The k-quant part of the AVX2 table (matmul_kquants_avx2.cc).
RowKernel Avx2KQuantRowKernel(TensorType type);

}  // namespace strata
