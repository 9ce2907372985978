// AVX-512 (F, BW, VL, DQ, VNNI) row kernels: F32/F16/BF16 and the 32-value
// block types Q8_0, Q4_0, Q4_1. k-quants use the AVX2 kernels at this level.
//
// Quantized types work on groups of 16 blocks (512 values):
//   - the 16 weight scales (and Q4_1 mins) come in with one masked gather of
//     the blocks' first 4 bytes (f16 d | f16 m) and one vcvtph2ps;
//   - the 16 activation scales d[] and sums s[] are one vector load each
//     (Q8Act32 rows are structure-of-arrays), so the min/offset term of 16
//     blocks is a single FMA;
//   - each pair of blocks is one 512-bit vpdpbusd (u8 x s8 -> 16 x i32, 8
//     lanes per block), converted to f32 and FMA'd with the pair's scales,
//     permuted out of the 16-scale vector.
// Q4 nibbles are unsigned, so they feed vpdpbusd directly; Q8_0 weights are
// signed, so |w| x (a with w's sign) does.
//
// Tiles: 4 rows x 1 token for decode, 1 row x up to 4 tokens for prefill.
// GCC 12's AVX-512 intrinsic headers trip -W(maybe-)uninitialized on their
// own _mm512_undefined_* helpers (GCC bug 105593); nothing here is affected.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <type_traits>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/simd_avx2_util.h"

namespace strata {
namespace {

// ---- F32 / F16 / BF16 ----

struct LoadF32 {
  using T = float;
  static __m512 Load(const float* w) { return _mm512_loadu_ps(w); }
  static __m512 MaskLoad(__mmask16 m, const float* w) { return _mm512_maskz_loadu_ps(m, w); }
};
struct LoadF16 {
  using T = uint16_t;
  static __m512 Load(const uint16_t* w) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
  }
  static __m512 MaskLoad(__mmask16 m, const uint16_t* w) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w));
  }
};
struct LoadBF16 {
  static __m512 Widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  using T = uint16_t;
  static __m512 Load(const uint16_t* w) {
    return Widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
  }
  static __m512 MaskLoad(__mmask16 m, const uint16_t* w) { return Widen(_mm256_maskz_loadu_epi16(m, w)); }
};

template <class L>
struct FloatKernel {
  template <int NT>
  static void Run(int64_t n, const void* wv, const void* act, int64_t as, float* out, int64_t os) {
    const auto* w = static_cast<const typename L::T*>(wv);
    const float* x[NT];
    __m512 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) {
      x[t] = reinterpret_cast<const float*>(static_cast<const uint8_t*>(act) + t * as);
      acc0[t] = _mm512_setzero_ps();
      acc1[t] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 w0 = L::Load(w + i);
      const __m512 w1 = L::Load(w + i + 16);
      for (int t = 0; t < NT; ++t) {
        acc0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[t] + i), acc0[t]);
        acc1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + i + 16), acc1[t]);
      }
    }
    for (; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
      const __m512 w0 = L::MaskLoad(m, w + i);
      for (int t = 0; t < NT; ++t) {
        acc0[t] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[t] + i), acc0[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t * os] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
  }
};

// ---- Q8_0 / Q4_0 / Q4_1 ----

// Weight policies: how to load a pair of blocks as 64 bytes and how to dot
// them with 64 signed activation bytes.
struct Q8_0Policy {
  using Block = BlockQ8_0;
  static constexpr bool kHasMin = false;
  static constexpr bool kOffset8 = false;
  struct Pair {
    __m512i abs_w;
    __mmask64 neg;
  };
  template <bool kTwo>
  static Pair Load(const Block* b) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs));
    __m512i w;
    if constexpr (kTwo) {
      w = _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
    } else {
      w = _mm512_zextsi256_si512(lo);
    }
    // |-128| = 0x80 reads as 128 unsigned: exact.
    return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
  }
  static __m512i Dot(const Pair& p, __m512i x) {
    const __m512i xs = _mm512_mask_sub_epi8(x, p.neg, _mm512_setzero_si512(), x);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), p.abs_w, xs);
  }
};

template <bool kMin>
struct Q4Policy {
  using Block = std::conditional_t<kMin, BlockQ4_1, BlockQ4_0>;
  static constexpr bool kHasMin = kMin;
  static constexpr bool kOffset8 = !kMin;
  using Pair = __m512i;
  template <bool kTwo>
  static Pair Load(const Block* b) {
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs));
    __m256i q01;
    if constexpr (kTwo) {
      q01 = _mm256_inserti128_si256(_mm256_castsi128_si256(q0),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)), 1);
    } else {
      q01 = _mm256_zextsi128_si256(q0);
    }
    // [q0 q1] -> [q0 q0 q1 q1] -> low nibbles in lanes 0, 2, high in 1, 3.
    const __m512i x = _mm512_shuffle_i64x2(_mm512_castsi256_si512(q01), _mm512_castsi256_si512(q01),
                                           _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi64(x, shifts), _mm512_set1_epi8(0x0F));
  }
  static __m512i Dot(const Pair& w, __m512i x) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x);
  }
};

// NR weight rows x NT tokens per pass: decode (one token) takes 4 rows at a
// time so the rows' scale gathers, reductions and the shared activation loads
// overlap; prefill takes 4 tokens per row so each unpacked block is reused.
template <class P>
struct Block32Kernel {
  using Block = typename P::Block;

  template <int NR, int NT, bool kTwo>
  static void Pair(const Block* const* w, int64_t blk, const int8_t* const* qa,
                   const __m512 (*sc)[NT], __m512i pidx, __m512 (*acc)[NT]) {
    __m512i x[NT];
    for (int t = 0; t < NT; ++t) {
      x[t] = kTwo ? _mm512_loadu_si512(qa[t])
                  : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa[t])));
    }
    for (int r = 0; r < NR; ++r) {
      const typename P::Pair wp = P::template Load<kTwo>(w[r] + blk);
      for (int t = 0; t < NT; ++t) {
        const __m512 dot = _mm512_cvtepi32_ps(P::Dot(wp, x[t]));
        acc[r][t] = _mm512_fmadd_ps(dot, _mm512_permutexvar_ps(pidx, sc[r][t]), acc[r][t]);
      }
    }
  }

  template <int NR, int NT>
  static void Tile(int64_t cols, const uint8_t* wv, int64_t ws, const uint8_t* act, int64_t as,
                   float* out, int64_t os) {
    const int64_t nb = cols / kQK32;
    const Block* w[NR];
    for (int r = 0; r < NR; ++r) w[r] = reinterpret_cast<const Block*>(wv + r * ws);
    Q8Act32Row a[NT];
    for (int t = 0; t < NT; ++t) a[t] = ViewQ8Act32(act + t * as, cols);
    __m512 acc[NR][NT], accm[NR][NT];
    for (int r = 0; r < NR; ++r) {
      for (int t = 0; t < NT; ++t) {
        acc[r][t] = _mm512_setzero_ps();
        accm[r][t] = _mm512_setzero_ps();
      }
    }
    const __m512i gather_index = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(static_cast<int>(sizeof(Block))));
    const __m512i pair_index0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int64_t g = 0; g < nb; g += 16) {
      const int n = nb - g >= 16 ? 16 : static_cast<int>(nb - g);
      const __mmask16 m = n == 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
      __m512 da[NT];
      const int8_t* qa[NT];
      for (int t = 0; t < NT; ++t) {
        da[t] = _mm512_maskz_loadu_ps(m, a[t].d + g);
        qa[t] = a[t].qs + g * kQK32;
      }
      __m512 sc[NR][NT];
      for (int r = 0; r < NR; ++r) {
        // f16 d (low half) and, for Q4_1, f16 m (high half) of 16 blocks.
        const __m512i dm =
            _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, gather_index, w[r] + g, 1);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
        for (int t = 0; t < NT; ++t) sc[r][t] = _mm512_mul_ps(dw, da[t]);
        if constexpr (P::kHasMin || P::kOffset8) {
          __m512 mw;
          if constexpr (P::kHasMin) {
            mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
          } else {
            mw = _mm512_mul_ps(dw, _mm512_set1_ps(-8.0f));
          }
          for (int t = 0; t < NT; ++t) {
            accm[r][t] = _mm512_fmadd_ps(mw, _mm512_maskz_loadu_ps(m, a[t].s + g), accm[r][t]);
          }
        }
      }
      __m512i pidx = pair_index0;
      int p = 0;
      for (; p + 2 <= n; p += 2) {
        Pair<NR, NT, true>(w, g + p, qa, sc, pidx, acc);
        for (int t = 0; t < NT; ++t) qa[t] += 2 * kQK32;
        pidx = _mm512_add_epi32(pidx, _mm512_set1_epi32(2));
      }
      if (p < n) Pair<NR, NT, false>(w, g + p, qa, sc, pidx, acc);
    }
    for (int r = 0; r < NR; ++r) {
      for (int t = 0; t < NT; ++t) {
        out[t * os + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t], accm[r][t]));
      }
    }
  }

  static void Rows(const KernelArgs& k, int64_t rb, int64_t re) {
    const auto* act = static_cast<const uint8_t*>(k.act);
    const int64_t ws = k.weight_stride, as = k.act_stride, os = k.out_stride;
    if (k.tokens == 1) {
      int64_t r = rb;
      for (; r + 4 <= re; r += 4) Tile<4, 1>(k.cols, k.weight + r * ws, ws, act, as, k.out + r, os);
      for (; r < re; ++r) Tile<1, 1>(k.cols, k.weight + r * ws, ws, act, as, k.out + r, os);
      return;
    }
    for (int64_t r = rb; r < re; ++r) {
      const uint8_t* w = k.weight + r * ws;
      float* out = k.out + r;
      int64_t t = 0;
      for (; t + 4 <= k.tokens; t += 4) Tile<1, 4>(k.cols, w, ws, act + t * as, as, out + t * os, os);
      switch (k.tokens - t) {
        case 3:
          Tile<1, 3>(k.cols, w, ws, act + t * as, as, out + t * os, os);
          break;
        case 2:
          Tile<1, 2>(k.cols, w, ws, act + t * as, as, out + t * os, os);
          break;
        case 1:
          Tile<1, 1>(k.cols, w, ws, act + t * as, as, out + t * os, os);
          break;
        default:
          break;
      }
    }
  }
};

}  // namespace

MatMulKernel Avx512Kernel(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return simd::RowsTokenGroups<FloatKernel<LoadF32>>;
    case TensorType::kF16:
      return simd::RowsTokenGroups<FloatKernel<LoadF16>>;
    case TensorType::kBF16:
      return simd::RowsTokenGroups<FloatKernel<LoadBF16>>;
    case TensorType::kQ8_0:
      return Block32Kernel<Q8_0Policy>::Rows;
    case TensorType::kQ4_0:
      return Block32Kernel<Q4Policy<false>>::Rows;
    case TensorType::kQ4_1:
      return Block32Kernel<Q4Policy<true>>::Rows;
    default:
      return nullptr;
  }
}

}  // namespace strata
