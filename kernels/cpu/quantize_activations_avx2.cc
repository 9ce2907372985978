// AVX2 versions of the activation quantizers, bit-identical to the scalar
// ones in quantize_activations.cc (same IEEE operations: exact max|a|, one
// f32 division each for d and 1/d, one multiply and a round-to-nearest-even
// conversion per value, the same clamp), so results do not depend on which
// runs. Only about 5-10 % of a decode matmul, but free to take.
#include <immintrin.h>

#include "kernels/cpu/quantize_activations.h"
#include "kernels/cpu/simd_avx2_util.h"

namespace strata {
namespace {

// max |x[i]| over n (multiple of 8) values, as the scalar code finds it: by
// the bits of |x|, which order like the values and make a NaN win.
float AbsMax(const float* x, int n) {
  __m256i m = _mm256_setzero_si256();
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  for (int i = 0; i < n; i += 8) {
    m = _mm256_max_epi32(m, _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(x + i)), abs_mask));
  }
  __m128i v = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  v = _mm_max_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm_max_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtss_f32(_mm_castsi128_ps(v));
}

// 32 values -> 32 int8 at q; returns the 4 partial sums (8 values each).
__m256i Quantize32(const float* x, __m256 id, int8_t* q, int* sum_lo16, int* sum_hi16) {
  const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-127);
  __m256i v[4];
  for (int k = 0; k < 4; ++k) {
    const __m256i r = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id));
    v[k] = _mm256_max_epi32(_mm256_min_epi32(r, hi), lo);
  }
  const __m256i s01 = _mm256_add_epi32(v[0], v[1]), s23 = _mm256_add_epi32(v[2], v[3]);
  *sum_lo16 = simd::HSumI32(s01);
  *sum_hi16 = simd::HSumI32(s23);
  // packs interleave 128-bit lanes; the permute restores value order.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  return s01;
}

float Scale(float amax, __m256* id) {
  const float d = amax / 127.0f;
  *id = _mm256_set1_ps(d != 0.0f ? 127.0f / amax : 0.0f);
  return d;
}

}  // namespace

void QuantizeRowQ8Act32Avx2(const float* x, void* y, int64_t n) {
  auto* qs = static_cast<int8_t*>(y);
  auto* ds = reinterpret_cast<float*>(qs + n);
  for (int64_t b = 0; b < n / kQK32; ++b) {
    __m256 id;
    const float d = Scale(AbsMax(x + b * kQK32, kQK32), &id);
    int s0, s1;
    Quantize32(x + b * kQK32, id, qs + b * kQK32, &s0, &s1);
    ds[2 * b] = d;
    ds[2 * b + 1] = d * static_cast<float>(s0 + s1);
  }
}

void QuantizeRowQ8Act32NibAvx2(const float* x, void* y, int64_t n) {
  const int64_t nb = n / kQK32, nb4 = Q8Act32NibBlocks(n);
  auto* qs = static_cast<int8_t*>(y);
  auto* ds = reinterpret_cast<float*>(qs + nb4 * kQK32);
  for (int64_t b = 0; b < nb4; ++b) {
    alignas(32) int8_t q[kQK32] = {};
    int s0 = 0, s1 = 0;
    float d = 0.0f;
    if (b < nb) {
      __m256 id;
      d = Scale(AbsMax(x + b * kQK32, kQK32), &id);
      Quantize32(x + b * kQK32, id, q, &s0, &s1);
    }
    int8_t* group = qs + (b / 4) * 4 * kQK32;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(group + (b % 4) * 16), _mm_load_si128(reinterpret_cast<const __m128i*>(q)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(group + 64 + (b % 4) * 16),
                     _mm_load_si128(reinterpret_cast<const __m128i*>(q + 16)));
    ds[2 * b] = d;
    ds[2 * b + 1] = d * static_cast<float>(s0 + s1);
  }
}

void QuantizeRowQ8ActKAvx2(const float* x, BlockQ8ActK* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float* xb = x + b * kQKK;
    __m256 id;
    y[b].d = Scale(AbsMax(xb, kQKK), &id);
    for (int c = 0; c < kQKK / 32; ++c) {
      int s0, s1;
      Quantize32(xb + 32 * c, id, y[b].qs + 32 * c, &s0, &s1);
      y[b].bsums[2 * c] = static_cast<int16_t>(s0);
      y[b].bsums[2 * c + 1] = static_cast<int16_t>(s1);
    }
  }
}

}  // namespace strata
