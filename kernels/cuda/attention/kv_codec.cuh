// Encode and decode of one KV-cache element for every KvDtype
// (kernels/paged_kv_view.h), as __host__ __device__ functions shared by the KV
// write, decode attention and prefill attention kernels. The arithmetic is the
// CPU reference's (kernels/cpu/kv_quant.h, kernels/cpu/float16.h) bit for bit:
// no device intrinsics, so the host harness and the GPU decode the same values.
//
//   dtype             bytes  element                        value
//   kF32              4      float                          x
//   kF16              2      IEEE half bits                 half(x)
//   kBF16             2      top 16 bits of f32 (RNE)       bf16(x)
//   kFp8E4M3          1      E4M3 code, row scale           scale * e4m3(code)
//   kFp8E4M3Unscaled  1      E4M3 code                      e4m3(code)
//   kInt8             1      int8 code, row scale           scale * code
//
// A "row" is one (token, KV head): head_dim elements plus, for the scaled
// dtypes, one f32 at PagedKvView::ScaleOffset.
#pragma once

#include <cstdint>

#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/paged_kv_view.h"

namespace strata::cuda {

__host__ __device__ __forceinline__ float KvBitsToF32(uint32_t b) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(b);
#else
  float f;
  __builtin_memcpy(&f, &b, sizeof(f));
  return f;
#endif
}

__host__ __device__ __forceinline__ uint32_t KvF32ToBits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t b;
  __builtin_memcpy(&b, &f, sizeof(b));
  return b;
#endif
}

// IEEE half bits -> f32 (exact).
__host__ __device__ __forceinline__ float KvF16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  uint32_t m = h & 0x3FFu;
  if (e == 0) {
    if (m == 0) return KvBitsToF32(sign);
    // Subnormal: m * 2^-24.
    const float v = static_cast<float>(m) * 5.9604644775390625e-08f;
    return (h & 0x8000u) ? -v : v;
  }
  if (e == 31) return KvBitsToF32(sign | 0x7F800000u | (m << 13));  // inf / NaN
  return KvBitsToF32(sign | ((e + 112u) << 23) | (m << 13));
}

__host__ __device__ __forceinline__ float KvBF16ToF32(uint16_t b) {
  return KvBitsToF32(static_cast<uint32_t>(b) << 16);
}

// f32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN.
__host__ __device__ __forceinline__ uint16_t KvF32ToBF16(float f) {
  const uint32_t x = KvF32ToBits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// E4M3 ("e4m3fn") code -> f32; 0x7F / 0xFF are NaN.
__host__ __device__ __forceinline__ float KvE4M3ToF32(uint8_t c) {
  const uint32_t e = (c >> 3) & 0xFu;
  const uint32_t m = c & 7u;
  float v;
  if (e == 15 && m == 7) {
    v = KvBitsToF32(0x7FC00000u);
  } else if (e == 0) {
    v = static_cast<float>(m) * (1.0f / 512.0f);
  } else {
    v = KvBitsToF32(((e + 120u) << 23) | (m << 20));  // (1 + m/8) * 2^(e-7)
  }
  return (c & 0x80) ? -v : v;
}

// f32 -> E4M3, round to nearest even, saturating at +-448 (inf too), NaN -> 0x7F|sign.
__host__ __device__ __forceinline__ uint8_t KvF32ToE4M3(float f) {
  const uint32_t x = KvF32ToBits(f);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7F;
  const float a = KvBitsToF32(ax);
  if (a >= 448.0f) return sign | 0x7E;
  if (ax < 0x3C800000u) {  // a < 2^-6: subnormal, units of 2^-9
    const float s = a * 512.0f;
    uint32_t n = static_cast<uint32_t>(s);
    const float frac = s - static_cast<float>(n);
    if (frac > 0.5f || (frac == 0.5f && (n & 1u))) ++n;
    return static_cast<uint8_t>(sign | n);
  }
  const uint32_t e = (ax >> 23) - 127u + 7u;
  const uint32_t m = ax & 0x7FFFFFu;
  uint32_t code = (e << 3) | (m >> 20);
  const uint32_t rem = m & 0xFFFFFu;
  if (rem > 0x80000u || (rem == 0x80000u && (code & 1u))) ++code;
  return static_cast<uint8_t>(sign | code);
}

// f32 -> IEEE half bits, round to nearest even, NaN -> quiet NaN with the sign,
// overflow -> inf: the CPU F32ToF16 (kernels/cpu/float16.h) bit for bit.
__host__ __device__ __forceinline__ uint16_t KvF32ToF16(float f) {
  const uint32_t x = KvF32ToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);
  if (ax >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (ax < 0x38800000u) {  // subnormal or zero: units of 2^-24
    const float scaled = KvBitsToF32(ax) * 16777216.0f;
    const uint32_t n = static_cast<uint32_t>(scaled);
    const float frac = scaled - static_cast<float>(n);
    const uint32_t r = n + ((frac > 0.5f || (frac == 0.5f && (n & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = (ax >> 13) - (112u << 10);
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// Branch-free decodes for the attention inner loops, equal in value to
// KvF16ToF32 / KvE4M3ToF32 for every code (tested exhaustively on the host):
// the code's exponent and mantissa bits are placed in an f32 whose exponent
// bias is too small by 112 (f16) / 120 (E4M3) and fixed by one exact multiply
// by 2^112 / 2^120; the codes with the smallest exponent land on f32
// subnormals, which the multiply (no flush-to-zero) scales exactly. Only
// inf/NaN need a select. NaN payloads may differ from the exact decodes.
__host__ __device__ __forceinline__ float KvF16ToF32Fast(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  const float v = KvBitsToF32(em << 13) * 5.192296858534828e+33f;  // 2^112
  const float special = KvBitsToF32(0x7F800000u | ((h & 0x3FFu) << 13));
  return KvBitsToF32(KvF32ToBits(em >= 0x7C00u ? special : v) | sign);
}

// E4M3 byte in bits 31..24 of `top` (lower bits ignored) -> f32, the NaN codes
// 0x7F/0xFF excepted (they decode to +-480). An arithmetic shift by 4 puts the sign
// in bit 31 and exponent+mantissa in bits 27..20. Use it only where a NaN code
// cannot change the result: kFp8E4M3 rows holding a NaN code have a NaN scale
// (kernels/cpu/kv_quant.h), which the caller multiplies in.
__host__ __device__ __forceinline__ float KvE4M3TopToF32NoNaN(uint32_t top) {
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(top) >> 4) & 0x87F00000u;
  return KvBitsToF32(bits) * 1.329227995784916e+36f;  // 2^120
}

// The same with the NaN codes decoded to NaN: equal in value to KvE4M3ToF32.
__host__ __device__ __forceinline__ float KvE4M3TopToF32(uint32_t top) {
  const float v = KvE4M3TopToF32NoNaN(top);
  return (top & 0x7F000000u) == 0x7F000000u ? KvBitsToF32(0x7FC00000u) : v;
}

__host__ __device__ __forceinline__ float KvE4M3ToF32Fast(uint32_t c) { return KvE4M3TopToF32(c << 24); }

// KvDtypeBytes as a constant expression for templates and device code.
__host__ __device__ constexpr int KvDtypeBytesConst(KvDtype d) {
  return d == KvDtype::kF32 ? 4 : (d == KvDtype::kF16 || d == KvDtype::kBF16) ? 2 : 1;
}

// PagedKvView::Offset / ScaleOffset for device code (the view's members are
// host functions): element offset and scale index of row (block, head, slot).
__host__ __device__ __forceinline__ int64_t KvRowOffset(const PagedKvView& kv, int64_t block, int64_t head,
                                                        int64_t slot) {
  return ((block * kv.n_kv_heads + head) * kv.block_size + slot) * kv.head_dim;
}
__host__ __device__ __forceinline__ int64_t KvScaleIndex(const PagedKvView& kv, int64_t block, int64_t head,
                                                         int64_t slot) {
  return (block * kv.n_kv_heads + head) * kv.block_size + slot;
}

// Element `i` (flat index into the pool) of a KV pool of dtype `dtype`, before
// the row scale (the caller multiplies by the row's scale for kFp8E4M3/kInt8).
__host__ __device__ __forceinline__ float KvLoadElement(const void* pool, KvDtype dtype, int64_t i) {
  switch (dtype) {
    case KvDtype::kF32: return static_cast<const float*>(pool)[i];
    case KvDtype::kF16: return KvF16ToF32(static_cast<const uint16_t*>(pool)[i]);
    case KvDtype::kBF16: return KvBF16ToF32(static_cast<const uint16_t*>(pool)[i]);
    case KvDtype::kFp8E4M3:
    case KvDtype::kFp8E4M3Unscaled: return KvE4M3ToF32(static_cast<const uint8_t*>(pool)[i]);
    case KvDtype::kInt8: return static_cast<float>(static_cast<const int8_t*>(pool)[i]);
  }
  return 0.0f;
}

// The scale of row (block, head, slot): its f32 from the scale pool for the
// scaled dtypes, 1 for the others.
__host__ __device__ __forceinline__ float KvRowScale(const PagedKvView& kv, const float* scale_pool,
                                                     int64_t block, int64_t head, int64_t slot) {
  if (kv.dtype != KvDtype::kFp8E4M3 && kv.dtype != KvDtype::kInt8) return 1.0f;
  return scale_pool[(block * kv.n_kv_heads + head) * kv.block_size + slot];
}

}  // namespace strata::cuda
