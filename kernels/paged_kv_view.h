// The paged KV cache as kernels see it: one POD shared by host and device code.
//
// Per layer, K and V each live in a pool of blocks:
//
//   pool[num_blocks][n_kv_heads][block_size][head_dim]     (dtype elements)
//
//   block b, head h, slot s  ->  ((b * n_kv_heads + h) * block_size + s) * head_dim
//
// The quantised dtypes (kFp8E4M3, kInt8: one byte per element) also keep one
// f32 scale per (token, KV head) row, in a scale pool beside each data pool:
//
//   scales[num_blocks][n_kv_heads][block_size]   f32     (k_scale, v_scale)
//
//   block b, head h, slot s  ->  (b * n_kv_heads + h) * block_size + s
//
//   x[d] = scale * decode(code[d])     decode = E4M3 value or int8 value
//
// so one (token, KV head) row of head_dim elements takes head_dim + 4 bytes
// (F16, BF16: 2 * head_dim). Block ids and block tables are the same for every
// dtype. Float dtypes leave k_scale / v_scale null, and so does
// kFp8E4M3Unscaled (E4M3 codes with an implicit scale of 1: head_dim bytes per
// row, exactly half of F16).
//
// A sequence's token at position p lives in block block_tables[seq *
// max_blocks_per_seq + p / block_size], slot p % block_size. Block 0 is the
// null block: never handed to a sequence, so a zeroed table entry can't alias
// real data. The coordinator decides block ids; workers only read and write.
#pragma once

#include <cstdint>
#include <limits>

namespace strata {

// kFp8E4M3: OCP FP8 E4M3 ("e4m3fn": bias 7, max 448, no inf, NaN = 0x7F/0xFF)
// times a per-row scale amax / 448. kInt8: symmetric int8 in [-127, 127] times
// a per-row scale amax / 127. Layout and rounding in kernels/cpu/kv_quant.h.
// kBF16: bfloat16 (the top 16 bits of an f32, round-to-nearest-even on write,
// NaN kept as a quiet NaN), 2 bytes per element like kF16, no scales.
// kFp8E4M3Unscaled: the same E4M3 codes with no scale pools (an implicit scale
// of 1.0, like vLLM's uncalibrated fp8 KV cache): values are converted
// directly, round to nearest even, saturating at +-448, NaN kept as NaN.
enum class KvDtype : uint8_t { kF32 = 0, kF16 = 1, kFp8E4M3 = 2, kInt8 = 3, kBF16 = 4, kFp8E4M3Unscaled = 5 };

// Bytes of one stored element (scales not included).
inline int KvDtypeBytes(KvDtype d) {
  switch (d) {
    case KvDtype::kF32: return 4;
    case KvDtype::kF16:
    case KvDtype::kBF16: return 2;
    case KvDtype::kFp8E4M3:
    case KvDtype::kFp8E4M3Unscaled:
    case KvDtype::kInt8: return 1;
  }
  return 0;
}

// Whether the dtype keeps a per-(token, KV head) f32 scale.
inline bool KvDtypeHasScales(KvDtype d) { return d == KvDtype::kFp8E4M3 || d == KvDtype::kInt8; }

inline const char* KvDtypeName(KvDtype d) {
  switch (d) {
    case KvDtype::kF32: return "f32";
    case KvDtype::kF16: return "f16";
    case KvDtype::kFp8E4M3: return "fp8";
    case KvDtype::kInt8: return "int8";
    case KvDtype::kBF16: return "bf16";
    case KvDtype::kFp8E4M3Unscaled: return "fp8-unscaled";
  }
  return "?";
}

// Bytes of one (K or V) pool of `num_blocks` blocks: data and scales.
// Returns false (leaving the outputs alone) on a negative size or int64
// overflow, so callers can build a view without wrapping.
struct KvPoolBytes {
  int64_t data = 0;    // num_blocks * n_kv_heads * block_size * head_dim * element bytes
  int64_t scales = 0;  // num_blocks * n_kv_heads * block_size * 4, or 0 without scales
};
inline bool ComputeKvPoolBytes(KvDtype dtype, int64_t num_blocks, int64_t n_kv_heads, int64_t block_size,
                               int64_t head_dim, KvPoolBytes* out) {
  const int64_t elem = KvDtypeBytes(dtype);
  if (elem == 0 || num_blocks < 0 || n_kv_heads < 0 || block_size < 0 || head_dim < 0) return false;
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t rows = 1;
  for (int64_t f : {num_blocks, n_kv_heads, block_size}) {
    if (f != 0 && rows > kMax / f) return false;
    rows *= f;
  }
  if (head_dim != 0 && rows > kMax / head_dim / elem) return false;
  if (rows > kMax / 4) return false;
  out->data = rows * head_dim * elem;
  out->scales = KvDtypeHasScales(dtype) ? rows * 4 : 0;
  return true;
}

struct PagedKvView {
  void* k = nullptr;  // this layer's K pool
  void* v = nullptr;  // this layer's V pool
  float* k_scale = nullptr;  // this layer's K scale pool (quantised dtypes only)
  float* v_scale = nullptr;  // this layer's V scale pool
  KvDtype dtype = KvDtype::kF16;
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  int32_t n_seqs = 0;

  // Element offset of (block, head, slot); callers have validated the ids.
  int64_t Offset(int64_t block, int64_t head, int64_t slot) const {
    return ((block * n_kv_heads + head) * block_size + slot) * head_dim;
  }
  // Scale index of (block, head, slot) in k_scale / v_scale.
  int64_t ScaleOffset(int64_t block, int64_t head, int64_t slot) const {
    return (block * n_kv_heads + head) * block_size + slot;
  }
};

}  // namespace strata
