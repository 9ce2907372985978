// GGML block layouts of the quantized weight types, and the 8-bit activation
// blocks the quantized matmuls multiply against.
//
// Included by translation units compiled with different ISA flags, so every
// function here has internal linkage (`static`): an inline function with
// external linkage could be emitted out of line in the AVX-512 unit and then
// chosen by the linker for the scalar path too.
//
// Weight blocks (byte offsets; f16 = IEEE half, little-endian):
//
//   Q8_0 (32 values, 34 B)      x[i] = d * qs[i]
//   +------+----------------------------------+
//   | d    | qs[0..31]  int8                  |
//   0      2                                  34
//
//   Q4_0 (32 values, 18 B)      x[i] = d * (nib[i] - 8)
//   Q4_1 (32 values, 20 B)      x[i] = d * nib[i] + m
//   +------+------+------------------------+
//   | d    | m    | qs[0..15]              |     (Q4_0 has no m)
//   0      2      4                        20
//   nib[j] = qs[j] & 0xF, nib[j + 16] = qs[j] >> 4   (j < 16)
//
//   Q4_K (256 values, 144 B): 8 sub-blocks of 32, 6-bit scale sc[j] and min mn[j]
//   +------+------+---------------+----------------------------------+
//   | d    | dmin | scales[12]    | qs[128]                          |
//   0      2      4               16                                 144
//   Chunk c < 4 covers values 64c..64c+63 with qs[32c..32c+31]: low nibbles
//   are sub-block 2c, high nibbles sub-block 2c+1.
//   x = d * sc[j] * nib - dmin * mn[j]
//   scales packing (sc/mn for j < 4 in bytes 0..7, j >= 4 split):
//     j < 4 : sc = s[j] & 63          mn = s[j+4] & 63
//     j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4
//             mn = (s[j+4] >> 4) | (s[j]   >> 6) << 4
//
//   Q5_K (256 values, 176 B): Q4_K plus a 5th bit per value
//   +------+------+---------------+-----------+----------------------+
//   | d    | dmin | scales[12]    | qh[32]    | qs[128]              |
//   0      2      4               16          48                     176
//   value 32j + l (sub-block j) has high bit (qh[l] >> j) & 1.
//
//   Q6_K (256 values, 210 B): 16 groups of 16 with an int8 scale each
//   +-----------------+----------------+-------------+------+
//   | ql[128]         | qh[64]         | scales[16]  | d    |
//   0                 128              192           208    210
//   Half h < 2 covers values 128h..; with ql' = ql + 64h, qh' = qh + 32h and
//   l < 32:  q(128h +      l) = (ql'[l]      & 15) | ((qh'[l] >> 0) & 3) << 4
//            q(128h + 32 + l) = (ql'[l + 32] & 15) | ((qh'[l] >> 2) & 3) << 4
//            q(128h + 64 + l) = (ql'[l]      >> 4) | ((qh'[l] >> 4) & 3) << 4
//            q(128h + 96 + l) = (ql'[l + 32] >> 4) | ((qh'[l] >> 6) & 3) << 4
//   x[e] = d * scales[e / 16] * (q(e) - 32)
//
// Activations (our own formats, in per-call scratch; not GGML's f16 Q8_1):
//
//   Q8Act32 row of n values, nb = n / 32 blocks: the values of all blocks,
//   then each block's (d, s) pair, so that a 64-byte load covers two blocks'
//   values and a 16-byte load two blocks' (d, s):
//   +------------------------+--------------------------------+-----+
//   | qs[0..n) int8          | d0 s0 d1 s1 ... (2 x nb f32)   | pad |  (64-byte multiple)
//   +------------------------+--------------------------------+-----+
//   a[32b + i] ~= d_b * qs[32b + i],  s_b = d_b * sum(qs[32b..32b+31])
//
//   Q8Act32Nib (AVX-512 Q4_0/Q4_1 kernels only): the same values and (d, s)
//   pairs with the blocks padded to a multiple of 4 (zeros) and each group of
//   4 blocks' values reordered as the 4 blocks' low halves, then high halves,
//   matching 4 blocks of nibbles loaded into one register (low nibbles = values
//   0..15, high = 16..31):
//   +------------------------------------------+------------------------------------------+
//   | b0[0..15] b1[0..15] b2[0..15] b3[0..15]  | b0[16..31] b1[16..31] b2[16..31] b3[16..31] | ...
//   +------------------------------------------+------------------------------------------+
//   then d0 s0 d1 s1 ... for the padded block count, then pad to 64 bytes.
//
//   Q8ActK (256 values, 292 B) a[i] ~= d * qs[i],  bsums[g] = sum(qs[16g..16g+15])
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata {

inline constexpr int kQK32 = 32;   // values per Q4_0/Q4_1/Q8_0 block
inline constexpr int kQKK = 256;   // values per k-quant super-block
inline constexpr int kKScaleBytes = 12;

struct BlockQ8_0 {
  uint16_t d;  // f16
  int8_t qs[kQK32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;  // f16
  uint8_t qs[kQK32 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;  // f16
  uint16_t m;  // f16
  uint8_t qs[kQK32 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ4_K {
  uint16_t d;     // f16, scale of the 6-bit scales
  uint16_t dmin;  // f16, scale of the 6-bit mins
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// Bytes of one Q8Act32 row of n values (n a multiple of 32).
static constexpr int64_t Q8Act32RowBytes(int64_t n) { return (n + 8 * (n / kQK32) + 63) / 64 * 64; }

// Q8Act32Nib: blocks padded to a multiple of 4.
static constexpr int64_t Q8Act32NibBlocks(int64_t n) { return (n / kQK32 + 3) / 4 * 4; }
static constexpr int64_t Q8Act32NibRowBytes(int64_t n) {
  return (Q8Act32NibBlocks(n) * (kQK32 + 8) + 63) / 64 * 64;
}

// View of a Q8Act32 row (layout above): block b's scale is ds[2b], its
// scaled sum ds[2b + 1] (Q4_1's min term and Q4_0's "-8" offset use it).
// Plain fields, no member functions (see the ODR note at the top).
struct Q8Act32Row {
  const int8_t* qs;
  const float* ds;
};
static inline Q8Act32Row ViewQ8Act32(const void* row, int64_t n) {
  const auto* base = static_cast<const uint8_t*>(row);
  return {reinterpret_cast<const int8_t*>(base), reinterpret_cast<const float*>(base + n)};
}
static inline Q8Act32Row ViewQ8Act32Nib(const void* row, int64_t n) {
  const auto* base = static_cast<const uint8_t*>(row);
  return {reinterpret_cast<const int8_t*>(base),
          reinterpret_cast<const float*>(base + Q8Act32NibBlocks(n) * kQK32)};
}

// Activations quantized for k-quant weights (GGML's Q8_K).
struct BlockQ8ActK {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];  // sum of each group of 16 qs
};
static_assert(sizeof(BlockQ8ActK) == 292);

// Unpacks the 6-bit scale and min of sub-block j < 8 of a Q4_K/Q5_K block.
static constexpr void KQuantScaleMin(int j, const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

}  // namespace strata
