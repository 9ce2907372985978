// AVX2 + FMA + F16C body of paged attention (compiled with those flags only,
// selected at run time). Same math as the scalar body: two passes over the
// sequence's K then V rows, softmax in between, one task per (token, KV head)
// so the query heads of a GQA group share every K/V row loaded.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/paged_attention_impl.h"

namespace strata::attention_internal {

namespace {

// Loads 8 elements of a K/V row as f32. The dtype is a template argument so
// the hot loops carry no branch. Quantised dtypes return the codes' values
// without the row scale (applied once per row by the caller): int8 exactly,
// E4M3 times 2^-8 (kDecodeMul undoes it): the code's low 7 bits shifted left
// by 7 are the f16 with the same mantissa and exponent field (bias 15 instead
// of 7; E4M3 subnormals become f16 subnormals, which vcvtph2ps converts
// exactly), and the sign-extended byte supplies the sign bit.
template <KvDtype kDtype>
inline __m256 Load8(const void* base, int64_t off) {
  if constexpr (kDtype == KvDtype::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  } else if constexpr (kDtype == KvDtype::kF16) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off)));
  } else if constexpr (kDtype == KvDtype::kBF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else if constexpr (kDtype == KvDtype::kInt8) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(base) + off));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
  } else {
    static_assert(kDtype == KvDtype::kFp8E4M3 || kDtype == KvDtype::kFp8E4M3Unscaled);
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(base) + off));
    const __m128i b16 = _mm_cvtepi8_epi16(b);
    __m128i h = _mm_and_si128(_mm_slli_epi16(b16, 7), _mm_set1_epi16(static_cast<int16_t>(0xBF80)));
    if constexpr (kDtype == KvDtype::kFp8E4M3Unscaled) {
      // No row scale carries a NaN here: map the E4M3 NaN codes (s111 1111,
      // f16 s0111 1111 1000 0000 after the shift) to f16 NaN (exponent 0x1F).
      const __m128i low7 = _mm_and_si128(b16, _mm_set1_epi16(0x7F));
      const __m128i nan = _mm_cmpeq_epi16(low7, _mm_set1_epi16(0x7F));
      h = _mm_or_si128(h, _mm_and_si128(nan, _mm_set1_epi16(0x7C00)));
    }
    return _mm256_cvtph_ps(h);
  }
}

// What Load8's values are multiplied by (besides the row scale) to give the
// stored values: 2^8 for E4M3 (see Load8), 1 otherwise. A power of two, so
// folding it into another factor is exact.
template <KvDtype kDtype>
constexpr bool kQuantised = kDtype == KvDtype::kFp8E4M3 || kDtype == KvDtype::kInt8;

template <KvDtype kDtype>
constexpr float kDecodeMul =
    (kDtype == KvDtype::kFp8E4M3 || kDtype == KvDtype::kFp8E4M3Unscaled) ? 256.0f : 1.0f;

inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}


// Dot products of q with 8 consecutive K rows (row stride hd, all in one
// block), reduced with one transpose-add tree instead of 8 horizontal sums.
template <KvDtype kDtype>
inline __m256 Dot8(const float* q, const void* base, int64_t off, int64_t hd) {
  __m256 a[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) a[i] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) a[i] = _mm256_fmadd_ps(qv, Load8<kDtype>(base, off + i * hd + d), a[i]);
  }
  const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

// exp(x) for x <= 0 (softmax after subtracting the max), Cephes' polynomial:
// relative error ~1e-7; inputs below -87 are clamped (exp(-87) ~ 1.6e-38).
inline __m256 ExpNonPositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// In-place softmax of n scores.
inline void Softmax(float* s, int64_t n) {
  const float mx = *std::max_element(s, s + n);
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = ExpNonPositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmx));
    _mm256_storeu_ps(s + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = HorizontalSum(vsum);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (j = 0; j < n; ++j) s[j] *= inv;
}

}  // namespace

// static: compiled with AVX2 flags, must not be picked by another unit.
template <KvDtype kDtype>
static void RunTasks(const PagedAttentionParams& p, int64_t begin, int64_t end) {
  const PagedKvView& kv = p.kv;
  const int64_t hd = kv.head_dim;  // multiple of 8 (checked by the dispatcher)
  const int32_t group = p.n_heads / kv.n_kv_heads;
  std::vector<float> scores;
  std::vector<float> acc(group * hd);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t t = task / kv.n_kv_heads;
    const int32_t kvh = static_cast<int32_t>(task % kv.n_kv_heads);
    const int32_t pos = p.positions[t];
    const int32_t* table = kv.block_tables + static_cast<int64_t>(p.token_seq[t]) * kv.max_blocks_per_seq;
    const int64_t n = pos + 1;
    scores.resize(group * n);
    const float* q0 = p.q + t * p.q_stride + static_cast<int64_t>(kvh) * group * hd;
    // Scores. Slots of one block are consecutive rows, so runs of 8
    // positions inside a block go through Dot8; the chunking depends only on
    // the position and block size, so prefill and decode compute a token's
    // attention identically.
    // Quantised rows: score = (dot(q, codes) * row scale) * (scale * kDecodeMul).
    const float qk_scale = p.scale * kDecodeMul<kDtype>;
    const __m256 scale = _mm256_set1_ps(qk_scale);
    for (int64_t j = 0; j < n;) {
      const int64_t block = table[j / kv.block_size];
      const int64_t slot = j % kv.block_size;
      const int64_t off = kv.Offset(block, kvh, slot);
      const int64_t soff = kv.ScaleOffset(block, kvh, slot);
      if (slot + 8 <= kv.block_size && j + 8 <= n) {
        for (int32_t g = 0; g < group; ++g) {
          __m256 d = Dot8<kDtype>(q0 + g * hd, kv.k, off, hd);
          if constexpr (kQuantised<kDtype>) d = _mm256_mul_ps(d, _mm256_loadu_ps(kv.k_scale + soff));
          _mm256_storeu_ps(scores.data() + g * n + j, _mm256_mul_ps(d, scale));
        }
        j += 8;
        continue;
      }
      for (int32_t g = 0; g < group; ++g) {
        const float* q = q0 + g * hd;
        __m256 s = _mm256_setzero_ps();
        for (int64_t d = 0; d < hd; d += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), Load8<kDtype>(kv.k, off + d), s);
        float dot = HorizontalSum(s);
        if constexpr (kQuantised<kDtype>) dot *= kv.k_scale[soff];
        scores[g * n + j] = dot * qk_scale;
      }
      ++j;
    }
    for (int32_t g = 0; g < group; ++g) Softmax(scores.data() + g * n, n);
    // Weighted sum of V rows. Per query head and 64-dimension slice, 8
    // accumulators stay in registers across all positions (reading the V
    // row slice from cache again per head is cheaper than spilling).
    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
      const int chunks = static_cast<int>(std::min<int64_t>(64, hd - d0) / 8);
      for (int32_t g = 0; g < group; ++g) {
        const float* w = scores.data() + g * n;
        __m256 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) a[i] = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; ++j) {
          const int64_t block = table[j / kv.block_size];
          const int64_t off = kv.Offset(block, kvh, j % kv.block_size) + d0;
          float wf = w[j];
          if constexpr (kQuantised<kDtype>) {
            wf *= kv.v_scale[kv.ScaleOffset(block, kvh, j % kv.block_size)] * kDecodeMul<kDtype>;
          }
          const __m256 wj = _mm256_set1_ps(wf);
          if (chunks == 8) {
#pragma GCC unroll 8
            for (int i = 0; i < 8; ++i) a[i] = _mm256_fmadd_ps(wj, Load8<kDtype>(kv.v, off + 8 * i), a[i]);
          } else {
            for (int i = 0; i < chunks; ++i) a[i] = _mm256_fmadd_ps(wj, Load8<kDtype>(kv.v, off + 8 * i), a[i]);
          }
        }
        float* dst = acc.data() + g * hd + d0;
        for (int i = 0; i < chunks; ++i) _mm256_storeu_ps(dst + 8 * i, a[i]);
      }
    }
    float* out = p.out + t * static_cast<int64_t>(p.n_heads) * hd + static_cast<int64_t>(kvh) * group * hd;
    std::copy(acc.begin(), acc.end(), out);
  }
}

// FP8 caches: per block, the task's K (then V) rows of that block are
// dequantised once into an f32 scratch with the row scale folded in
// (code * scale * kDecodeMul), so the GQA group's query heads share the
// conversion; then the F32 kernels run on the scratch. The chunking (runs of
// 8 slots from each block start) depends only on the position and block size,
// as in RunTasks, so prefill and decode compute a token identically.
// INT8 decodes in two instructions and runs RunTasks directly: on SmolLM2's
// shape (3 query heads per KV head, head_dim 64, 512 positions) the scratch
// made INT8 11 % slower and FP8 19 % faster than decoding in the loops.
template <KvDtype kDtype>
static inline void DequantizeRows(const void* base, const float* scales, int64_t off, int64_t soff, int64_t rows,
                           int64_t hd, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    // kFp8E4M3Unscaled has no scale pool: an implicit row scale of 1.
    const float row_scale = kDtype == KvDtype::kFp8E4M3Unscaled ? 1.0f : scales[soff + r];
    const __m256 s = _mm256_set1_ps(row_scale * kDecodeMul<kDtype>);
    for (int64_t d = 0; d < hd; d += 8) {
      _mm256_storeu_ps(dst + r * hd + d, _mm256_mul_ps(Load8<kDtype>(base, off + r * hd + d), s));
    }
  }
}

template <KvDtype kDtype>
static void RunTasksQuantised(const PagedAttentionParams& p, int64_t begin, int64_t end) {
  const PagedKvView& kv = p.kv;
  const int64_t hd = kv.head_dim;  // multiple of 8 (checked by the dispatcher)
  const int64_t bs = kv.block_size;
  const int32_t group = p.n_heads / kv.n_kv_heads;
  std::vector<float> scores;
  std::vector<float> acc(group * hd);
  std::vector<float> rows(bs * hd);
  const __m256 scale = _mm256_set1_ps(p.scale);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t t = task / kv.n_kv_heads;
    const int32_t kvh = static_cast<int32_t>(task % kv.n_kv_heads);
    const int32_t pos = p.positions[t];
    const int32_t* table = kv.block_tables + static_cast<int64_t>(p.token_seq[t]) * kv.max_blocks_per_seq;
    const int64_t n = pos + 1;
    scores.resize(group * n);
    const float* q0 = p.q + t * p.q_stride + static_cast<int64_t>(kvh) * group * hd;
    for (int64_t j0 = 0; j0 < n; j0 += bs) {
      const int64_t block = table[j0 / bs];
      const int64_t cnt = std::min(bs, n - j0);
      DequantizeRows<kDtype>(kv.k, kv.k_scale, kv.Offset(block, kvh, 0), kv.ScaleOffset(block, kvh, 0), cnt, hd,
                             rows.data());
      int64_t i = 0;
      for (; i + 8 <= cnt; i += 8) {
        for (int32_t g = 0; g < group; ++g) {
          _mm256_storeu_ps(scores.data() + g * n + j0 + i,
                           _mm256_mul_ps(Dot8<KvDtype::kF32>(q0 + g * hd, rows.data(), i * hd, hd), scale));
        }
      }
      for (; i < cnt; ++i) {
        for (int32_t g = 0; g < group; ++g) {
          const float* q = q0 + g * hd;
          __m256 s = _mm256_setzero_ps();
          for (int64_t d = 0; d < hd; d += 8) {
            s = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(rows.data() + i * hd + d), s);
          }
          scores[g * n + j0 + i] = HorizontalSum(s) * p.scale;
        }
      }
    }
    for (int32_t g = 0; g < group; ++g) Softmax(scores.data() + g * n, n);
    // Weighted sum of V rows, block by block; per query head and 64-dimension
    // slice the 8 accumulators stay in registers over the block's rows.
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j0 = 0; j0 < n; j0 += bs) {
      const int64_t block = table[j0 / bs];
      const int64_t cnt = std::min(bs, n - j0);
      DequantizeRows<kDtype>(kv.v, kv.v_scale, kv.Offset(block, kvh, 0), kv.ScaleOffset(block, kvh, 0), cnt, hd,
                             rows.data());
      for (int64_t d0 = 0; d0 < hd; d0 += 64) {
        const int chunks = static_cast<int>(std::min<int64_t>(64, hd - d0) / 8);
        for (int32_t g = 0; g < group; ++g) {
          const float* w = scores.data() + g * n + j0;
          float* dst = acc.data() + g * hd + d0;
          __m256 a[8];
          for (int i = 0; i < chunks; ++i) a[i] = _mm256_loadu_ps(dst + 8 * i);
          for (int64_t r = 0; r < cnt; ++r) {
            const __m256 wj = _mm256_set1_ps(w[r]);
            const float* row = rows.data() + r * hd + d0;
            if (chunks == 8) {
#pragma GCC unroll 8
              for (int i = 0; i < 8; ++i) a[i] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(row + 8 * i), a[i]);
            } else {
              for (int i = 0; i < chunks; ++i) a[i] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(row + 8 * i), a[i]);
            }
          }
          for (int i = 0; i < chunks; ++i) _mm256_storeu_ps(dst + 8 * i, a[i]);
        }
      }
    }
    float* out = p.out + t * static_cast<int64_t>(p.n_heads) * hd + static_cast<int64_t>(kvh) * group * hd;
    std::copy(acc.begin(), acc.end(), out);
  }
}

void RunTasksAvx2(const PagedAttentionParams& p, int64_t begin, int64_t end) {
  switch (p.kv.dtype) {
    case KvDtype::kF32: RunTasks<KvDtype::kF32>(p, begin, end); break;
    case KvDtype::kF16: RunTasks<KvDtype::kF16>(p, begin, end); break;
    case KvDtype::kBF16: RunTasks<KvDtype::kBF16>(p, begin, end); break;
    case KvDtype::kFp8E4M3: RunTasksQuantised<KvDtype::kFp8E4M3>(p, begin, end); break;
    case KvDtype::kInt8: RunTasks<KvDtype::kInt8>(p, begin, end); break;
    case KvDtype::kFp8E4M3Unscaled: RunTasksQuantised<KvDtype::kFp8E4M3Unscaled>(p, begin, end); break;
  }
}

}  // namespace strata::attention_internal
