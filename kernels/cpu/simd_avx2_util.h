// Small AVX2 helpers shared by the AVX2 and AVX-512 kernel units. Include
// only from units compiled with (at least) AVX2+FMA+F16C flags. Everything is
// `static` (internal linkage) so each unit keeps its own copy (ODR note in
// matmul_kernels.h).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/matmul_kernels.h"

namespace strata {
namespace simd {

static inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline int HSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

static inline float Half(uint16_t h) { return _cvtsh_ss(h); }

// 16 nibbles -> 32 bytes: low nibbles in bytes 0..15, high nibbles in 16..31
// (the order of values inside a Q4_0/Q4_1 block).
static inline __m256i UnpackNibbles16(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Sum of products of unsigned bytes u and signed bytes s as 8 int32 lanes.
// Each pair product sum must fit int16 (true for u <= 128, |s| <= 127).
static inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Runs Kernel::Run<NT>(cols, w_row, act, act_stride, out, out_stride) for
// each row in range over the tokens in groups of 4 (then the remainder), so
// a kernel can load and unpack each weight block once per group of tokens.
template <class Kernel>
static void RowsTokenGroups(const KernelArgs& k, int64_t rb, int64_t re) {
  const auto* act = static_cast<const uint8_t*>(k.act);
  const int64_t as = k.act_stride, os = k.out_stride;
  for (int64_t r = rb; r < re; ++r) {
    const uint8_t* w = k.weight + r * k.weight_stride;
    float* out = k.out + r;
    int64_t t = 0;
    for (; t + 4 <= k.tokens; t += 4) Kernel::template Run<4>(k.cols, w, act + t * as, as, out + t * os, os);
    switch (k.tokens - t) {
      case 3:
        Kernel::template Run<3>(k.cols, w, act + t * as, as, out + t * os, os);
        break;
      case 2:
        Kernel::template Run<2>(k.cols, w, act + t * as, as, out + t * os, os);
        break;
      case 1:
        Kernel::template Run<1>(k.cols, w, act + t * as, as, out + t * os, os);
        break;
      default:
        break;
    }
  }
}

}  // namespace simd
}  // namespace strata
