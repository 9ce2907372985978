// Parameters of the element-wise activation casts the GEMM path needs (the model
// keeps activations in f32; cuBLASLt takes BF16/F16):
//
//   kind         in          out         conversion (bit-exact with the CPU reference)
//   kF32ToBF16   f32 [n]     u16 [n]     F32ToBF16 (kernels/cpu/kv_quant.h): RNE, NaN stays
//                                        a quiet NaN (sign and top payload kept)
//   kF32ToF16    f32 [n]     u16 [n]     F32ToF16 (kernels/cpu/float16.h): RNE, subnormals,
//                                        |x| >= 65520 -> inf, NaN -> sign|0x7E00
//   kBF16ToF32   u16 [n]     f32 [n]     exact (bits << 16)
//
// `in` and `out` must not overlap. Pointers 16-byte aligned take the vector path
// (4 elements per load/store); any alignment is correct.
#pragma once

#include <cstdint>

namespace strata::cuda {

enum class CastKind : int32_t { kF32ToBF16 = 0, kF32ToF16 = 1, kBF16ToF32 = 2 };

struct CastParams {
  CastKind kind = CastKind::kF32ToBF16;
  const void* in = nullptr;
  void* out = nullptr;
  int64_t n = 0;  // elements
};

}  // namespace strata::cuda
