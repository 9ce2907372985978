#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/paged_attention_impl.h"

namespace strata {

namespace {

// Checks that token t's sequence, position and every block it touches are in
// range. `upto_all` = the token reads blocks 0..pos/bs (attention) or only its
// own (write).
absl::Status ValidateToken(const PagedKvView& kv, const int32_t* token_seq,
                           const int32_t* positions, int64_t t, bool upto_all) {
  const int32_t s = token_seq[t];
  const int32_t pos = positions[t];
  if (s < 0 || s >= kv.n_seqs) {
    return absl::InvalidArgumentError(absl::StrCat("token ", t, ": sequence index ", s,
                                                   " outside [0, ", kv.n_seqs, ")"));
  }
  if (pos < 0 || pos / kv.block_size >= kv.max_blocks_per_seq) {
    return absl::InvalidArgumentError(absl::StrCat("token ", t, ": position ", pos,
                                                   " outside the block table (",
                                                   kv.max_blocks_per_seq, " blocks of ",
                                                   kv.block_size, ")"));
  }
  const int32_t* table = kv.block_tables + static_cast<int64_t>(s) * kv.max_blocks_per_seq;
  for (int32_t b = upto_all ? 0 : pos / kv.block_size; b <= pos / kv.block_size; ++b) {
    if (table[b] <= 0 || table[b] >= kv.num_blocks) {
      return absl::InvalidArgumentError(absl::StrCat("token ", t, ": block id ", table[b],
                                                     " at table index ", b, " outside [1, ",
                                                     kv.num_blocks, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateView(const PagedKvView& kv) {
  if (!kv.k || !kv.v || !kv.block_tables || kv.block_size <= 0 || kv.n_kv_heads <= 0 ||
      kv.head_dim <= 0 || kv.num_blocks <= 0 || kv.max_blocks_per_seq <= 0) {
    return absl::InvalidArgumentError("paged KV view is incomplete");
  }
  if (KvDtypeBytes(kv.dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("paged KV view: unknown dtype ", static_cast<int>(kv.dtype)));
  }
  if (KvDtypeHasScales(kv.dtype) && (!kv.k_scale || !kv.v_scale)) {
    return absl::InvalidArgumentError(
        absl::StrCat("paged KV view: dtype ", KvDtypeName(kv.dtype), " needs k_scale and v_scale pools"));
  }
  return absl::OkStatus();
}

// Stores one (token, KV head) row at element offset `off` (scale index `soff`).
inline void StoreRow(KvDtype dtype, void* base, float* scales, int64_t off, int64_t soff, const float* src,
                     int64_t n) {
  switch (dtype) {
    case KvDtype::kF32:
      std::copy(src, src + n, static_cast<float*>(base) + off);
      break;
    case KvDtype::kF16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = F32ToF16(src[i]);
      break;
    }
    case KvDtype::kBF16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = F32ToBF16(src[i]);
      break;
    }
    case KvDtype::kFp8E4M3:
      scales[soff] = QuantizeRowFp8(src, n, static_cast<uint8_t*>(base) + off);
      break;
    case KvDtype::kInt8:
      scales[soff] = QuantizeRowInt8(src, n, static_cast<int8_t*>(base) + off);
      break;
    case KvDtype::kFp8E4M3Unscaled:
      EncodeRowE4M3(src, n, static_cast<uint8_t*>(base) + off);
      break;
  }
}

inline void LoadRow(KvDtype dtype, const void* base, const float* scales, int64_t off, int64_t soff, float* dst,
                    int64_t n) {
  switch (dtype) {
    case KvDtype::kF32: {
      const float* src = static_cast<const float*>(base) + off;
      std::copy(src, src + n, dst);
      break;
    }
    case KvDtype::kF16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(src[i]);
      break;
    }
    case KvDtype::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(src[i]);
      break;
    }
    case KvDtype::kFp8E4M3:
      DequantizeRowFp8(static_cast<const uint8_t*>(base) + off, scales[soff], n, dst);
      break;
    case KvDtype::kInt8:
      DequantizeRowInt8(static_cast<const int8_t*>(base) + off, scales[soff], n, dst);
      break;
    case KvDtype::kFp8E4M3Unscaled:  // the FP8 decode with an implicit scale of 1
      DequantizeRowFp8(static_cast<const uint8_t*>(base) + off, 1.0f, n, dst);
      break;
  }
}

}  // namespace

namespace attention_internal {

// One task per (token, KV head): the group's query heads share each K/V row
// read from the cache.
void RunTasksScalar(const PagedAttentionParams& p, int64_t begin, int64_t end) {
  const PagedKvView& kv = p.kv;
  const int64_t hd = kv.head_dim;
  const int32_t group = p.n_heads / kv.n_kv_heads;
  std::vector<float> scores;
  std::vector<float> row(hd);
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
      const int64_t b = table[j / kv.block_size], slot = j % kv.block_size;
      LoadRow(kv.dtype, kv.k, kv.k_scale, kv.Offset(b, kvh, slot), kv.ScaleOffset(b, kvh, slot), row.data(), hd);
      for (int32_t g = 0; g < group; ++g) {
        const float* q = q0 + g * hd;
        float dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += q[d] * row[d];
        scores[g * n + j] = dot * p.scale;
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
      const int64_t b = table[j / kv.block_size], slot = j % kv.block_size;
      LoadRow(kv.dtype, kv.v, kv.v_scale, kv.Offset(b, kvh, slot), kv.ScaleOffset(b, kvh, slot), row.data(), hd);
      for (int32_t g = 0; g < group; ++g) {
        const float w = scores[g * n + j];
        float* a = acc.data() + g * hd;
        for (int64_t d = 0; d < hd; ++d) a[d] += w * row[d];
      }
    }
    float* out = p.out + t * static_cast<int64_t>(p.n_heads) * hd + static_cast<int64_t>(kvh) * group * hd;
    std::copy(acc.begin(), acc.end(), out);
  }
}

}  // namespace attention_internal

absl::Status LaunchKvWrite(const KvWriteParams& p) {
  absl::Status st = ValidateView(p.kv);
  if (!st.ok()) return st;
  if (!p.k || !p.v || !p.token_seq || !p.positions) return absl::InvalidArgumentError("KvWrite: null input");
  for (int64_t t = 0; t < p.tokens; ++t) {
    st = ValidateToken(p.kv, p.token_seq, p.positions, t, /*upto_all=*/false);
    if (!st.ok()) return st;
  }
  const PagedKvView& kv = p.kv;
  for (int64_t t = 0; t < p.tokens; ++t) {
    const int32_t pos = p.positions[t];
    const int32_t block =
        kv.block_tables[static_cast<int64_t>(p.token_seq[t]) * kv.max_blocks_per_seq + pos / kv.block_size];
    const int32_t slot = pos % kv.block_size;
    for (int32_t h = 0; h < kv.n_kv_heads; ++h) {
      const int64_t off = kv.Offset(block, h, slot);
      const int64_t soff = kv.ScaleOffset(block, h, slot);
      StoreRow(kv.dtype, kv.k, kv.k_scale, off, soff, p.k + t * p.k_stride + h * kv.head_dim, kv.head_dim);
      StoreRow(kv.dtype, kv.v, kv.v_scale, off, soff, p.v + t * p.v_stride + h * kv.head_dim, kv.head_dim);
    }
  }
  return absl::OkStatus();
}

absl::Status LaunchPagedAttentionWithLevel(const PagedAttentionParams& p, SimdLevel level) {
  if (level > HardwareSimdLevel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("PagedAttention: SIMD level ", std::string(SimdLevelName(level)), " not supported by this CPU"));
  }
  absl::Status st = ValidateView(p.kv);
  if (!st.ok()) return st;
  if (!p.q || !p.out || !p.token_seq || !p.positions || p.n_heads <= 0 ||
      p.n_heads % p.kv.n_kv_heads != 0) {
    return absl::InvalidArgumentError("PagedAttention: null input or head count not a multiple of KV heads");
  }
  for (int64_t t = 0; t < p.tokens; ++t) {
    st = ValidateToken(p.kv, p.token_seq, p.positions, t, /*upto_all=*/true);
    if (!st.ok()) return st;
  }
  const int64_t tasks = p.tokens * p.kv.n_kv_heads;
  const bool avx2 = level >= SimdLevel::kAvx2 && p.kv.head_dim % 8 == 0;
  auto run = [&](int64_t begin, int64_t end, int /*thread*/) {
    if (avx2) {
      attention_internal::RunTasksAvx2(p, begin, end);
    } else {
      attention_internal::RunTasksScalar(p, begin, end);
    }
  };
  if (p.pool) {
    p.pool->ParallelFor(tasks, 1, run);
  } else {
    run(0, tasks, 0);
  }
  return absl::OkStatus();
}

absl::Status LaunchPagedAttention(const PagedAttentionParams& p) {
  return LaunchPagedAttentionWithLevel(p, DetectedSimdLevel());
}

}  // namespace strata
