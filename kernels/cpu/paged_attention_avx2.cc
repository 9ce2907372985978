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

// Loads 8 elements of a K/V row as f32.
inline __m256 Load8(KvDtype dtype, const void* base, int64_t off) {
  if (dtype == KvDtype::kF32) return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  return _mm256_cvtph_ps(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off)));
}

inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

}  // namespace

void RunTasksAvx2(const PagedAttentionParams& p, int64_t begin, int64_t end) {
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
    for (int64_t j = 0; j < n; ++j) {
      const int64_t off = kv.Offset(table[j / kv.block_size], kvh, j % kv.block_size);
      for (int32_t g = 0; g < group; ++g) {
        const float* q = q0 + g * hd;
        __m256 s = _mm256_setzero_ps();
        for (int64_t d = 0; d < hd; d += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), Load8(kv.dtype, kv.k, off + d), s);
        scores[g * n + j] = HorizontalSum(s) * p.scale;
      }
    }
    for (int32_t g = 0; g < group; ++g) {
      float* s = scores.data() + g * n;
      const float mx = *std::max_element(s, s + n);
      float sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < n; ++j) s[j] *= inv;
    }
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t off = kv.Offset(table[j / kv.block_size], kvh, j % kv.block_size);
      for (int64_t d = 0; d < hd; d += 8) {
        const __m256 v = Load8(kv.dtype, kv.v, off + d);
        for (int32_t g = 0; g < group; ++g) {
          float* a = acc.data() + g * hd + d;
          _mm256_storeu_ps(a, _mm256_fmadd_ps(_mm256_set1_ps(scores[g * n + j]), v, _mm256_loadu_ps(a)));
        }
      }
    }
    float* out = p.out + t * static_cast<int64_t>(p.n_heads) * hd + static_cast<int64_t>(kvh) * group * hd;
    std::copy(acc.begin(), acc.end(), out);
  }
}

}  // namespace strata::attention_internal
