// Scalar conversions of IEEE half (F16) and bfloat16 (BF16) to f32, exact for
// every input (subnormals, infinities, NaN payloads).
//
// `static` on purpose: this header is included by units compiled with
// different ISA flags (see quant_blocks.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace strata {

static inline float F32FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

static inline uint32_t BitsFromF32(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

static inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) return F32FromBits(sign | 0x7F800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return F32FromBits(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return F32FromBits(sign);  // +-0
  // Subnormal half: normalise into an f32 (always representable).
  int e = -1;
  do {
    ++e;
    mant <<= 1;
  } while ((mant & 0x400) == 0);
  return F32FromBits(sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3FF) << 13));
}

static inline float BF16ToF32(uint16_t b) { return F32FromBits(static_cast<uint32_t>(b) << 16); }

// Round-to-nearest-even f32 -> f16 (tests and tools; not on a hot path).
static inline uint16_t F32ToF16(float f) {
  const uint32_t x = BitsFromF32(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t ax = x & 0x7FFFFFFF;
  if (ax > 0x7F800000) return static_cast<uint16_t>(sign | 0x7E00);  // NaN
  if (ax >= 0x47800000) {
    // >= 65536 rounds to inf; [65520, 65536) also rounds to inf.
    return static_cast<uint16_t>(sign | 0x7C00);
  }
  if (ax < 0x38800000) {  // below the smallest normal half: subnormal or zero
    const float scaled = F32FromBits(ax) * 16777216.0f;  // * 2^24, exact
    // Round to nearest even integer count of 2^-24 units.
    const uint32_t n = static_cast<uint32_t>(scaled);
    const float frac = scaled - static_cast<float>(n);
    uint32_t r = n + ((frac > 0.5f || (frac == 0.5f && (n & 1))) ? 1 : 0);
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = ((ax >> 13) - (112u << 10));
  const uint32_t rem = ax & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into inf: correct
  return static_cast<uint16_t>(sign | h);
}

}  // namespace strata
