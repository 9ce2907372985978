// Quantised KV-cache rows (kernels/paged_kv_view.h): one (token, KV head) row
// of head_dim values is stored as head_dim one-byte codes plus one f32 scale.
//
//   FP8 (KvDtype::kFp8E4M3), OCP 8-bit floating point, E4M3 ("e4m3fn"):
//
//     bit  7    6 5 4 3    2 1 0
//          s    e e e e    m m m         bias 7, no infinities
//     e = 0:        (-1)^s * m/8 * 2^-6          (subnormal, 0 when m = 0)
//     e = 1..15:    (-1)^s * (1 + m/8) * 2^(e-7) (max 0x7E = 448)
//     s111 1111:    NaN
//
//     scale = amax / 448, code[d] = E4M3(x[d] / scale) rounded to nearest,
//     ties to even, saturating at +-448. x ~= scale * E4M3value(code).
//
//   FP8 unscaled (KvDtype::kFp8E4M3Unscaled): the same E4M3 codes with an
//     implicit scale of 1 and no scale pool: code[d] = E4M3(x[d]) (saturating
//     at +-448, NaN -> NaN code per element), x ~= E4M3value(code).
//
//   INT8 (KvDtype::kInt8), symmetric:
//     scale = amax / 127, code[d] = round_half_even(x[d] / scale) in [-127, 127].
//     |x - scale * code| <= scale / 2.
//
// amax = max |x[d]| over the row. A zero row stores scale 0 and zero codes. A
// row with a NaN or infinity stores scale NaN, so every value read back from
// it is NaN (as F16 would propagate it into attention); its codes are 0x7F
// (FP8 NaN) / 0 for the non-finite elements.
//
// `static` on purpose: this header is included by units compiled with
// different ISA flags (see float16.h). The KV write (scalar, identical at every
// SIMD level) quantises; attention dequantises on the fly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace strata {

constexpr float kE4M3Max = 448.0f;
constexpr float kInt8KvMax = 127.0f;

// f32 -> BF16 (KvDtype::kBF16): the top 16 bits, round to nearest even
// (+-0, infinities and subnormals included: finite values just below the max
// round to inf as in IEEE). NaN stays NaN: the sign and top payload bits are
// kept and the quiet bit is set, so a NaN never rounds into an infinity.
static inline uint16_t F32ToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// f32 -> E4M3, round to nearest even, saturating (|x| >= 448, inf -> +-448),
// NaN -> 0x7F | sign.
static inline uint8_t F32ToE4M3(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7F;  // NaN
  float a;
  std::memcpy(&a, &ax, sizeof(a));
  if (a >= kE4M3Max) return sign | 0x7E;  // saturate (incl. inf)
  if (ax < 0x3C800000u) {  // a < 2^-6: subnormal range, units of 2^-9
    const float s = a * 512.0f;  // exact (power of two)
    uint32_t n = static_cast<uint32_t>(s);
    const float frac = s - static_cast<float>(n);
    if (frac > 0.5f || (frac == 0.5f && (n & 1))) ++n;  // n == 8 is 0x08 = 2^-6: right
    return static_cast<uint8_t>(sign | n);
  }
  // Normal: f32 exponent -6..8 -> E4M3 exponent 1..15, keep 3 mantissa bits.
  const uint32_t e = (ax >> 23) - 127 + 7;
  const uint32_t m = ax & 0x7FFFFFu;
  uint32_t code = (e << 3) | (m >> 20);
  const uint32_t rem = m & 0xFFFFFu;
  if (rem > 0x80000u || (rem == 0x80000u && (code & 1))) ++code;  // carry into e is right; a < 448 stays <= 0x7E
  return static_cast<uint8_t>(sign | code);
}

static inline float E4M3ToF32(uint8_t c) {
  const uint32_t e = (c >> 3) & 0xF;
  const uint32_t m = c & 7;
  float v;
  if (e == 15 && m == 7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (e == 0) {
    v = static_cast<float>(m) * (1.0f / 512.0f);
  } else {
    v = std::ldexp(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
  }
  return (c & 0x80) ? -v : v;
}

// The 256 decoded E4M3 values (one table per translation unit).
static inline const float* E4M3Table() {
  struct Table {
    float v[256];
    Table() {
      for (int c = 0; c < 256; ++c) v[c] = E4M3ToF32(static_cast<uint8_t>(c));
    }
  };
  static const Table table;
  return table.v;
}

// max |x| over the row, or NaN if any element is NaN or infinite.
static inline float RowAmax(const float* x, int64_t n) {
  float amax = 0.0f;
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    finite &= (a <= std::numeric_limits<float>::max());  // false for inf and NaN
    amax = a > amax ? a : amax;
  }
  return finite ? amax : std::numeric_limits<float>::quiet_NaN();
}

// Quantises n values into codes; returns the row's scale.
static inline float QuantizeRowFp8(const float* x, int64_t n, uint8_t* codes) {
  const float amax = RowAmax(x, n);
  if (std::isnan(amax)) {
    for (int64_t i = 0; i < n; ++i) codes[i] = std::isfinite(x[i]) ? 0 : 0x7F;
    return amax;
  }
  if (amax == 0.0f) {
    for (int64_t i = 0; i < n; ++i) codes[i] = 0;
    return 0.0f;
  }
  const float scale = amax / kE4M3Max;
  for (int64_t i = 0; i < n; ++i) codes[i] = F32ToE4M3(x[i] / scale);
  return scale;
}

static inline float QuantizeRowInt8(const float* x, int64_t n, int8_t* codes) {
  const float amax = RowAmax(x, n);
  if (std::isnan(amax) || amax == 0.0f) {
    for (int64_t i = 0; i < n; ++i) codes[i] = 0;
    return amax;
  }
  const float scale = amax / kInt8KvMax;
  for (int64_t i = 0; i < n; ++i) {
    float q = std::nearbyint(x[i] / scale);  // default rounding mode: ties to even
    q = q > kInt8KvMax ? kInt8KvMax : (q < -kInt8KvMax ? -kInt8KvMax : q);
    codes[i] = static_cast<int8_t>(q);
  }
  return scale;
}

static inline void DequantizeRowFp8(const uint8_t* codes, float scale, int64_t n, float* out) {
  const float* table = E4M3Table();
  for (int64_t i = 0; i < n; ++i) out[i] = scale * table[codes[i]];
}

// kFp8E4M3Unscaled: element-wise E4M3, no scale.
static inline void EncodeRowE4M3(const float* x, int64_t n, uint8_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = F32ToE4M3(x[i]);
}

static inline void DequantizeRowInt8(const int8_t* codes, float scale, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = scale * static_cast<float>(codes[i]);
}

}  // namespace strata
