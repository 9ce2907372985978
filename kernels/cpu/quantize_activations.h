// Quantization of f32 activation rows to the 8-bit blocks the quantized
// matmuls multiply against (layouts in quant_blocks.h):
//   Q8Act32 for Q4_0/Q4_1/Q8_0 weights, Q8ActK for k-quant weights.
// Per block: d = max|a| / 127, q = round(a / d) in [-127, 127] (to nearest,
// ties to even), so |a - d * q| <= max|a| / 254 for every element. A NaN in
// the input makes its block's d NaN (and the results NaN): garbage in, NaN out.
//
// The scalar and AVX2 versions produce identical bits, so the SIMD levels
// differ only in the kernels' summation order.
#pragma once

#include <cstdint>

#include "kernels/cpu/quant_blocks.h"

namespace strata {

// n must be a multiple of 32; y has Q8Act32RowBytes(n) bytes, 4-byte aligned.
void QuantizeRowQ8Act32(const float* x, void* y, int64_t n);
// The Q8Act32Nib layout of the same values (quant_blocks.h); y has
// Q8Act32NibRowBytes(n) bytes, 4-byte aligned.
void QuantizeRowQ8Act32Nib(const float* x, void* y, int64_t n);
// n must be a multiple of 256.
void QuantizeRowQ8ActK(const float* x, BlockQ8ActK* y, int64_t n);

// AVX2 versions, bit-identical to the above (quantize_activations_avx2.cc);
// call only when the CPU has AVX2.
void QuantizeRowQ8Act32Avx2(const float* x, void* y, int64_t n);
void QuantizeRowQ8Act32NibAvx2(const float* x, void* y, int64_t n);
void QuantizeRowQ8ActKAvx2(const float* x, BlockQ8ActK* y, int64_t n);

}  // namespace strata
