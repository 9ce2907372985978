// AVX2 + FMA + F16C row kernels for F32/F16/BF16 and the 32-value block types
// (Q8_0, Q4_0, Q4_1). k-quants are in matmul_kquants_avx2.cc.
//
// Each kernel handles up to 4 tokens per pass over a weight row: weights are
// loaded (and converted / unpacked) once per block, then multiplied against
// each token's activations.
//
// Quantized blocks: integer dot of the 32 bytes with maddubs (unsigned x
// signed -> int16 pairs) + madd (-> int32), converted to f32 and scaled by
// d_w * d_a with one FMA into a vector accumulator; the horizontal sum happens
// once per row. Q8_0 weights are signed, so |w| x sign(a, w) feeds maddubs.
#include <immintrin.h>

#include <type_traits>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/simd_avx2_util.h"

namespace strata {
namespace {

using simd::DotU8S8;
using simd::Half;
using simd::HSum;

const float* TokenF32(const void* act, int64_t as, int t) {
  return reinterpret_cast<const float*>(static_cast<const uint8_t*>(act) + t * as);
}
Q8Act32Row TokenQ8(const void* act, int64_t as, int t, int64_t cols) {
  return ViewQ8Act32(static_cast<const uint8_t*>(act) + t * as, cols);
}

// ---- F32 / F16 / BF16: convert 8 weights to f32 in registers, FMA. ----

struct LoadF32 {
  using T = float;
  static __m256 Load(const float* w) { return _mm256_loadu_ps(w); }
  static float One(const float* w) { return *w; }
};
struct LoadF16 {
  using T = uint16_t;
  static __m256 Load(const uint16_t* w) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  }
  static float One(const uint16_t* w) { return _cvtsh_ss(*w); }
};
struct LoadBF16 {
  using T = uint16_t;
  static __m256 Load(const uint16_t* w) {
    const __m256i x = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
  }
  static float One(const uint16_t* w) {
    const uint32_t bits = static_cast<uint32_t>(*w) << 16;
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(bits))));
  }
};

template <class L>
struct FloatKernel {
  template <int NT>
  static void Run(int64_t n, const void* wv, const void* act, int64_t as, float* out, int64_t os) {
    const auto* w = static_cast<const typename L::T*>(wv);
    const float* x[NT];
    __m256 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) {
      x[t] = TokenF32(act, as, t);
      acc0[t] = _mm256_setzero_ps();
      acc1[t] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 w0 = L::Load(w + i);
      const __m256 w1 = L::Load(w + i + 8);
      for (int t = 0; t < NT; ++t) {
        acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc0[t]);
        acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[t] + i + 8), acc1[t]);
      }
    }
    for (; i + 8 <= n; i += 8) {
      const __m256 w0 = L::Load(w + i);
      for (int t = 0; t < NT; ++t) acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc0[t]);
    }
    for (int t = 0; t < NT; ++t) {
      float s = HSum(_mm256_add_ps(acc0[t], acc1[t]));
      for (int64_t j = i; j < n; ++j) s += L::One(w + j) * x[t][j];
      out[t * os] = s;
    }
  }
};

// ---- Q8_0 ----

struct Q8_0Kernel {
  template <int NT>
  static void Run(int64_t cols, const void* wv, const void* act, int64_t as, float* out, int64_t os) {
    const auto* w = static_cast<const BlockQ8_0*>(wv);
    const int64_t nb = cols / kQK32;
    Q8Act32Row a[NT];
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) {
      a[t] = TokenQ8(act, as, t, cols);
      acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
      const __m256i aq = _mm256_sign_epi8(q, q);  // |q|, 128 stays 0x80 = 128 unsigned
      const float dw = Half(w[b].d);
      for (int t = 0; t < NT; ++t) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].qs + b * kQK32));
        const __m256i p = DotU8S8(aq, _mm256_sign_epi8(x, q));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a[t].ds[2 * b]), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t * os] = HSum(acc[t]);
  }
};

// ---- Q4_0 / Q4_1: unsigned nibbles x signed activations. ----
// Q4_0: sum d*(q-8)*a = d*da*sum(q*qa) - 8*d*s.   Q4_1: d*da*sum(q*qa) + m*s.

template <bool kHasMin>
struct Q4Kernel {
  using Block = std::conditional_t<kHasMin, BlockQ4_1, BlockQ4_0>;
  template <int NT>
  static void Run(int64_t cols, const void* wv, const void* act, int64_t as, float* out, int64_t os) {
    const auto* w = static_cast<const Block*>(wv);
    const int64_t nb = cols / kQK32;
    Q8Act32Row a[NT];
    __m256 acc[NT];
    float off[NT];
    for (int t = 0; t < NT; ++t) {
      a[t] = TokenQ8(act, as, t, cols);
      acc[t] = _mm256_setzero_ps();
      off[t] = 0.0f;
    }
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i q = simd::UnpackNibbles16(w[b].qs);
      const float dw = Half(w[b].d);
      float m;
      if constexpr (kHasMin) {
        m = Half(w[b].m);
      } else {
        m = -8.0f * dw;
      }
      for (int t = 0; t < NT; ++t) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].qs + b * kQK32));
        const __m256i p = DotU8S8(q, x);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a[t].ds[2 * b]), acc[t]);
        off[t] += m * a[t].ds[2 * b + 1];
      }
    }
    for (int t = 0; t < NT; ++t) out[t * os] = HSum(acc[t]) + off[t];
  }
};

}  // namespace

MatMulKernel Avx2Kernel(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return simd::RowsTokenGroups<FloatKernel<LoadF32>>;
    case TensorType::kF16:
      return simd::RowsTokenGroups<FloatKernel<LoadF16>>;
    case TensorType::kBF16:
      return simd::RowsTokenGroups<FloatKernel<LoadBF16>>;
    case TensorType::kQ8_0:
      return simd::RowsTokenGroups<Q8_0Kernel>;
    case TensorType::kQ4_0:
      return simd::RowsTokenGroups<Q4Kernel<false>>;
    case TensorType::kQ4_1:
      return simd::RowsTokenGroups<Q4Kernel<true>>;
    default:
      return Avx2KQuantKernel(type);
  }
}

}  // namespace strata
