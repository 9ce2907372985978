// AVX2 row kernels for the k-quants (Q4_K, Q5_K, Q6_K) against Q8ActK
// activations (also used at the AVX-512 level).
//
// Per 256-value super-block: unsigned 4/5/6-bit values x signed 8-bit
// activations with maddubs (-> int16 pairs), weighted by the sub-block scales
// with madd (-> int32), accumulated as int32 over the super-block, then one
// FMA with d_w * d_a. The per-sub-block offsets (Q4_K/Q5_K mins, Q6_K's -32)
// come from the activations' 16-value sums (bsums) with one madd:
//   Q4_K/Q5_K: y = d*da*sum_j sc_j*dot_j - dmin*da*sum_j mn_j*(bsum_2j + bsum_2j+1)
//   Q6_K:      y = d*da*(sum_g sc_g*dot_g - 32*sum_g sc_g*bsum_g)
// Value bounds keep maddubs exact: 63 * 127 * 2 < 32767.
#include <immintrin.h>

#include <type_traits>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/simd_avx2_util.h"

namespace strata {
namespace {

using simd::Half;
using simd::HSum;

const BlockQ8ActK* TokenK(const void* act, int64_t as, int t) {
  return reinterpret_cast<const BlockQ8ActK*>(static_cast<const uint8_t*>(act) + t * as);
}

__m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// [lo x 8 | hi x 8] as int16.
__m256i PairScales(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo)));
}

// Q4_K and Q5_K share everything but the 5th bit.
template <bool kFiveBit>
struct Q45KKernel {
  using Block = std::conditional_t<kFiveBit, BlockQ5_K, BlockQ4_K>;
  template <int NT>
  static void Run(int64_t cols, const void* wv, const void* act, int64_t as, float* out, int64_t os) {
    const auto* w = static_cast<const Block*>(wv);
    const int64_t nb = cols / kQKK;
    const BlockQ8ActK* a[NT];
    __m256 acc[NT], accm[NT];
    for (int t = 0; t < NT; ++t) {
      a[t] = TokenK(act, as, t);
      acc[t] = _mm256_setzero_ps();
      accm[t] = _mm256_setzero_ps();
    }
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(0x01);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t sc[8], mn[8];
      for (int j = 0; j < 8; ++j) KQuantScaleMin(j, w[b].scales, &sc[j], &mn[j]);
      // [mn0 mn0 mn1 mn1 ... mn7 mn7] as int16, for madd with bsums.
      const __m128i m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
      const __m256i mins = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
      const float d = Half(w[b].d), dmin = Half(w[b].dmin);
      __m256i sumi[NT];
      for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
      __m256i qh;
      if constexpr (kFiveBit) qh = Load256(w[b].qh);
      for (int c = 0; c < 4; ++c) {
        const __m256i q = Load256(w[b].qs + 32 * c);
        __m256i lo = _mm256_and_si256(q, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if constexpr (kFiveBit) {
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
        }
        const __m256i s_lo = _mm256_set1_epi16(sc[2 * c]);
        const __m256i s_hi = _mm256_set1_epi16(sc[2 * c + 1]);
        for (int t = 0; t < NT; ++t) {
          const __m256i p_lo = _mm256_maddubs_epi16(lo, Load256(a[t][b].qs + 64 * c));
          const __m256i p_hi = _mm256_maddubs_epi16(hi, Load256(a[t][b].qs + 64 * c + 32));
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo),
                                                               _mm256_madd_epi16(p_hi, s_hi)));
        }
      }
      for (int t = 0; t < NT; ++t) {
        const float da = a[t][b].d;
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_set1_ps(d * da), acc[t]);
        const __m256i m = _mm256_madd_epi16(Load256(a[t][b].bsums), mins);
        accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(dmin * da), accm[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t * os] = HSum(_mm256_sub_ps(acc[t], accm[t]));
  }
};

struct Q6KKernel {
  template <int NT>
  static void Run(int64_t cols, const void* wv, const void* act, int64_t as, float* out, int64_t os) {
    const auto* w = static_cast<const BlockQ6_K*>(wv);
    const int64_t nb = cols / kQKK;
    const BlockQ8ActK* a[NT];
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) {
      a[t] = TokenK(act, as, t);
      acc[t] = _mm256_setzero_ps();
    }
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i two = _mm256_set1_epi8(0x03);
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* sc = w[b].scales;
      const __m256i scales16 =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
      __m256i sumi[NT];
      for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = w[b].ql + 64 * h;
        const __m256i qh = Load256(w[b].qh + 32 * h);
        const __m256i l0 = Load256(ql), l1 = Load256(ql + 32);
        // Values 128h + 32k + l for k = 0..3 (see quant_blocks.h).
        const __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4)),
            _mm256_or_si256(_mm256_and_si256(l1, low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4)),
        };
        for (int k = 0; k < 4; ++k) {
          const int g = 8 * h + 2 * k;  // scale of values 16g..16g+15, then g+1
          const __m256i s = PairScales(sc[g], sc[g + 1]);
          for (int t = 0; t < NT; ++t) {
            const __m256i p = _mm256_maddubs_epi16(q[k], Load256(a[t][b].qs + 128 * h + 32 * k));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, s));
          }
        }
      }
      const float d = Half(w[b].d);
      for (int t = 0; t < NT; ++t) {
        // Remove the +32 bias of the stored values: 32 * sum_g sc_g * bsum_g.
        const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(Load256(a[t][b].bsums), scales16), 5);
        const __m256i s = _mm256_sub_epi32(sumi[t], bias);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * a[t][b].d), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t * os] = HSum(acc[t]);
  }
};

}  // namespace

MatMulKernel Avx2KQuantKernel(TensorType type) {
  switch (type) {
    case TensorType::kQ4_K:
      return simd::RowsTokenGroups<Q45KKernel<false>>;
    case TensorType::kQ5_K:
      return simd::RowsTokenGroups<Q45KKernel<true>>;
    case TensorType::kQ6_K:
      return simd::RowsTokenGroups<Q6KKernel>;
    default:
      return nullptr;
  }
}

}  // namespace strata
