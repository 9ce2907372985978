// AVX-512 (F, BW, VL, DQ, VNNI) row kernels: F32/F16/BF16 and the 32-value
// block types Q8_0, Q4_0, Q4_1. k-quants use the AVX2 kernels at this level.
//
// Quantized types: each pair of blocks is one 512-bit vpdpbusd (u8 x s8 ->
// 16 x i32, 8 lanes per block), converted to f32 and FMA'd with the pair's
// scales. Q4 nibbles are unsigned, so they feed vpdpbusd directly; Q8_0
// weights are signed, so |w| x (a with w's sign) does.
//
// Each weight row is unpacked once per group of up to 4 tokens.
// GCC 12's AVX-512 intrinsic headers trip -W(maybe-)uninitialized on their
// own _mm512_undefined_* helpers (GCC bug 105593); nothing here is affected.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cstring>
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
  static void Accumulate(int64_t n, const void* wv, const void* act, int64_t as, __m512* sum) {
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
    for (int t = 0; t < NT; ++t) sum[t] = _mm512_add_ps(acc0[t], acc1[t]);
  }
};

// ---- Q8_0 / Q4_0 / Q4_1 ----

static inline uint32_t Load32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
static inline uint32_t Load16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Weight policies: load a pair of blocks as 64 values, dot them with 64
// signed activation bytes, and give the pair's factors as
// [d0, f0, d1, f1] where f multiplies the activation block sum s:
// f = m (Q4_1), -8 d (Q4_0), 0 (Q8_0). Without kTwo only block 0 exists.
struct Q8_0Policy {
  using Block = BlockQ8_0;
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
  template <bool kTwo>
  static __m128 Factors(const Block* b) {
    const uint32_t h = Load16(&b[0].d) | (kTwo ? Load16(&b[1].d) << 16 : 0u);
    const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h)));  // [d0 d1 0 0]
    return _mm_unpacklo_ps(d, _mm_setzero_ps());
  }
};

template <bool kMin>
struct Q4Policy {
  using Block = std::conditional_t<kMin, BlockQ4_1, BlockQ4_0>;
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
  template <bool kTwo>
  static __m128 Factors(const Block* b) {
    if constexpr (kMin) {  // (d, m) are the block's first 4 bytes
      __m128i h = _mm_cvtsi32_si128(static_cast<int>(Load32(&b[0])));
      if constexpr (kTwo) h = _mm_insert_epi32(h, static_cast<int>(Load32(&b[1])), 1);
      return _mm_cvtph_ps(h);
    } else {
      const uint32_t h = Load16(&b[0].d) | (kTwo ? Load16(&b[1].d) << 16 : 0u);
      const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h)));
      return _mm_mul_ps(_mm_unpacklo_ps(d, d), _mm_setr_ps(1.0f, -8.0f, 1.0f, -8.0f));
    }
  }
};

// One weight row x NT <= 4 tokens per pass: prefill reuses each unpacked
// block for 4 tokens. (Tiling 4 rows x 1 token for decode was no faster on
// warm weights and 2.5x slower on cold ones: four interleaved row streams
// defeat the hardware prefetcher here. One row at a time streams.)
//
// Per pair of blocks and token: prod = [d0, f0, d1, f1] * [da0, s0, da1, s1]
// (one 16-byte activation load); lanes 0 and 2 are the blocks' dot scales,
// permuted to 8 lanes each for the FMA; lanes 1 and 3 (the min / offset
// terms) are summed into a 4-lane accumulator.
// No gathers: a gather that misses the cache stalls (the first version, which
// gathered 16 blocks' scales at once, ran at a third of the AVX2 speed on cold
// weights).
template <class P>
struct Block32Kernel {
  using Block = typename P::Block;

  template <int NT, bool kTwo>
  static void Pair(const Block* w, const int8_t* const* qa, const float* const* ds, __m512* acc,
                   __m128* accm) {
    const __m512i pair_index = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    const typename P::Pair wp = P::template Load<kTwo>(w);
    const __m128 f = P::template Factors<kTwo>(w);
    for (int t = 0; t < NT; ++t) {
      __m512i x;
      __m128 dsv;
      if constexpr (kTwo) {
        x = _mm512_loadu_si512(qa[t]);
        dsv = _mm_loadu_ps(ds[t]);
      } else {
        x = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa[t])));
        dsv = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ds[t])));
      }
      const __m128 prod = _mm_mul_ps(f, dsv);
      accm[t] = _mm_add_ps(accm[t], prod);
      const __m512 scale = _mm512_permutexvar_ps(pair_index, _mm512_castps128_ps512(prod));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(P::Dot(wp, x)), scale, acc[t]);
    }
  }

  template <int NT>
  static void Accumulate(int64_t cols, const void* wv, const void* act, int64_t as, __m512* sum) {
    const auto* w = static_cast<const Block*>(wv);
    const int64_t nb = cols / kQK32;
    const int8_t* qa[NT];
    const float* ds[NT];
    __m512 acc[NT];
    __m128 accm[NT];
    for (int t = 0; t < NT; ++t) {
      const Q8Act32Row a = ViewQ8Act32(static_cast<const uint8_t*>(act) + t * as, cols);
      qa[t] = a.qs;
      ds[t] = a.ds;
      acc[t] = _mm512_setzero_ps();
      accm[t] = _mm_setzero_ps();
    }
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      Pair<NT, true>(w + b, qa, ds, acc, accm);
      for (int t = 0; t < NT; ++t) {
        qa[t] += 2 * kQK32;
        ds[t] += 4;
      }
    }
    if (b < nb) Pair<NT, false>(w + b, qa, ds, acc, accm);
    // Lanes 1 and 3 of accm hold the min / offset terms.
    const __m128 odd = _mm_setr_ps(0, 1, 0, 1);
    for (int t = 0; t < NT; ++t) {
      sum[t] = _mm512_add_ps(acc[t], _mm512_zextps128_ps512(_mm_mul_ps(accm[t], odd)));
    }
  }
};

// Q4_0 / Q4_1 on 4 blocks per step against Q8Act32Nib activations (values
// reordered so that 4 blocks' low halves, then high halves, are contiguous):
// 4 x 16 bytes of nibbles fill one register; its low nibbles dot the first
// 64 activation bytes and its high nibbles the next 64, both into the same
// int32 lanes (4 lanes per block). That unpacks twice the values per
// instruction of the pair kernel above and cut decode time by about a third.
// Factors come as [d0 f0 d1 f1 d2 f2 d3 f3] (f = m or -8 d) times one
// 32-byte load of the activations' (d, s) pairs; padding blocks are zeros.
template <bool kMin>
struct Q4NibKernel {
  using Block = std::conditional_t<kMin, BlockQ4_1, BlockQ4_0>;

  // Blocks b[0..k) (k <= 4); missing ones read as zero.
  static __m512i LoadNibbles(const Block* b, int k) {
    if (k == 4) {
      __m512i q = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs)));
      q = _mm512_inserti32x4(q, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)), 1);
      q = _mm512_inserti32x4(q, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[2].qs)), 2);
      return _mm512_inserti32x4(q, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[3].qs)), 3);
    }
    __m512i q = _mm512_setzero_si512();
    if (k > 0) q = _mm512_inserti32x4(q, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs)), 0);
    if (k > 1) q = _mm512_inserti32x4(q, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)), 1);
    if (k > 2) q = _mm512_inserti32x4(q, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[2].qs)), 2);
    return q;
  }

  static __m256 Factors(const Block* b, int k) {
    if constexpr (kMin) {  // (d, m) are each block's first 4 bytes
      const int v0 = static_cast<int>(Load32(&b[0]));
      const int v1 = k > 1 ? static_cast<int>(Load32(&b[1])) : 0;
      const int v2 = k > 2 ? static_cast<int>(Load32(&b[2])) : 0;
      const int v3 = k > 3 ? static_cast<int>(Load32(&b[3])) : 0;
      return _mm256_cvtph_ps(_mm_setr_epi32(v0, v1, v2, v3));
    } else {
      const int h01 = static_cast<int>(Load16(&b[0].d) | (k > 1 ? Load16(&b[1].d) << 16 : 0u));
      const int h23 = static_cast<int>((k > 2 ? Load16(&b[2].d) : 0u) | (k > 3 ? Load16(&b[3].d) << 16 : 0u));
      const __m128 d = _mm_cvtph_ps(_mm_setr_epi32(h01, h23, 0, 0));  // [d0 d1 d2 d3]
      const __m256 dd = _mm256_set_m128(_mm_unpackhi_ps(d, d), _mm_unpacklo_ps(d, d));
      return _mm256_mul_ps(dd, _mm256_setr_ps(1, -8, 1, -8, 1, -8, 1, -8));
    }
  }

  template <int NT>
  static void Accumulate(int64_t cols, const void* wv, const void* act, int64_t as, __m512* sum) {
    const auto* w = static_cast<const Block*>(wv);
    const int64_t nb = cols / kQK32;
    const __m512i lane_index = _mm512_set_epi32(6, 6, 6, 6, 4, 4, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0);
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const int8_t* qa[NT];
    const float* ds[NT];
    __m512 acc[NT];
    __m256 accm[NT];
    for (int t = 0; t < NT; ++t) {
      const Q8Act32Row a = ViewQ8Act32Nib(static_cast<const uint8_t*>(act) + t * as, cols);
      qa[t] = a.qs;
      ds[t] = a.ds;
      acc[t] = _mm512_setzero_ps();
      accm[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b += 4) {
      const int k = nb - b >= 4 ? 4 : static_cast<int>(nb - b);
      const __m512i q = LoadNibbles(w + b, k);
      const __m512i lo = _mm512_and_si512(q, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      const __m256 f = Factors(w + b, k);
      for (int t = 0; t < NT; ++t) {
        const __m256 prod = _mm256_mul_ps(f, _mm256_loadu_ps(ds[t]));
        accm[t] = _mm256_add_ps(accm[t], prod);
        const __m512 scale = _mm512_permutexvar_ps(lane_index, _mm512_castps256_ps512(prod));
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(qa[t]));
        dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512(qa[t] + 64));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
        qa[t] += 4 * kQK32;
        ds[t] += 8;
      }
    }
    const __m256 odd = _mm256_setr_ps(0, 1, 0, 1, 0, 1, 0, 1);  // the min / offset lanes
    for (int t = 0; t < NT; ++t) {
      sum[t] = _mm512_add_ps(acc[t], _mm512_zextps256_ps512(_mm256_mul_ps(accm[t], odd)));
    }
  }
};

// ---- Row / token driver ----

// Lane sums of 4 vectors: [sum(a0), sum(a1), sum(a2), sum(a3)].
static inline __m128 Reduce4(const __m512* a) {
  __m128 x[4];
  for (int i = 0; i < 4; ++i) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a[i]), _mm512_extractf32x8_ps(a[i], 1));
    x[i] = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  }
  return _mm_hadd_ps(_mm_hadd_ps(x[0], x[1]), _mm_hadd_ps(x[2], x[3]));
}

// The lane sum of one vector in exactly the order Reduce4 sums each of its
// four, so a row's result does not depend on whether it went through the
// decode or the prefill path (batch invariance: a sequence's tokens must not
// depend on what else is in the batch; with 8-bit activations a 1-ulp
// difference can flip a rounding and grow over the layers).
static inline float ReduceOne(__m512 a) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  const __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 s = _mm_hadd_ps(x, x);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

// Kernel::Accumulate<NT>(cols, w_row, act, act_stride, sum) leaves in sum[t]
// a vector whose lanes add up to token t's dot product. Decode (one token)
// runs 4 rows one after the other (one memory stream) and reduces and stores
// their 4 results together; the horizontal sums were a third of the time when
// each row reduced on its own. Prefill runs up to 4 tokens per pass per row.
template <class Kernel>
static void Rows(const KernelArgs& k, int64_t rb, int64_t re) {
  const auto* act = static_cast<const uint8_t*>(k.act);
  const int64_t ws = k.weight_stride, as = k.act_stride, os = k.out_stride;
  if (k.tokens == 1) {
    int64_t r = rb;
    for (; r + 4 <= re; r += 4) {
      __m512 sum[4];
      for (int i = 0; i < 4; ++i) Kernel::template Accumulate<1>(k.cols, k.weight + (r + i) * ws, act, as, &sum[i]);
      _mm_storeu_ps(k.out + r, Reduce4(sum));
    }
    for (; r < re; ++r) {
      __m512 sum;
      Kernel::template Accumulate<1>(k.cols, k.weight + r * ws, act, as, &sum);
      k.out[r] = ReduceOne(sum);
    }
    return;
  }
  for (int64_t r = rb; r < re; ++r) {
    const uint8_t* w = k.weight + r * ws;
    int64_t t = 0;
    auto run = [&](auto nt) {
      constexpr int NT = decltype(nt)::value;
      __m512 sum[NT];
      Kernel::template Accumulate<NT>(k.cols, w, act + t * as, as, sum);
      for (int i = 0; i < NT; ++i) k.out[(t + i) * os + r] = ReduceOne(sum[i]);
      t += NT;
    };
    while (k.tokens - t >= 4) run(std::integral_constant<int, 4>());
    switch (k.tokens - t) {
      case 3:
        run(std::integral_constant<int, 3>());
        break;
      case 2:
        run(std::integral_constant<int, 2>());
        break;
      case 1:
        run(std::integral_constant<int, 1>());
        break;
      default:
        break;
    }
  }
}

}  // namespace

MatMulKernel Avx512Kernel(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return Rows<FloatKernel<LoadF32>>;
    case TensorType::kF16:
      return Rows<FloatKernel<LoadF16>>;
    case TensorType::kBF16:
      return Rows<FloatKernel<LoadBF16>>;
    case TensorType::kQ8_0:
      return Rows<Block32Kernel<Q8_0Policy>>;
    case TensorType::kQ4_0:
      return Rows<Q4NibKernel<false>>;
    case TensorType::kQ4_1:
      return Rows<Q4NibKernel<true>>;
    default:
      return nullptr;
  }
}

}  // namespace strata
