// Prefill attention (FlashAttention-2) over the paged KV cache, one CTA per
// (tile of kPrefillBlockM = 128 packed query rows of one sequence, KV head): 4 warps,
// each owning 2 m16 row tiles (32 rows), so every K/V fragment read from shared
// memory feeds two MMAs. See prefill_attention_params.h for the batch layout.
//
//   gather K/V tile 0
//   for each K/V tile kt of BN keys (64 at head_dim 64, 32 at 128) up to the causal
//   bound of the CTA's last row:
//     start gathering tile kt + 1 into the other buffer (BF16: cp.async, in flight
//     during this tile's math; other dtypes: decoded to bf16 by kv_codec.cuh, row
//     scale applied, stored synchronously)
//     S = Q K^T on tensor cores (Q as bf16 A fragments, kept in registers)
//     mask keys > the row's position (only tiles reaching past the CTA's first row),
//     online softmax in f32 in the log2 domain (running max m, sum l, O *= exp2(m_old - m_new))
//     O += P V on tensor cores (P re-used from the S accumulators as bf16 A fragments,
//     V fragments by ldmatrix.trans)
//   out = O / l
//
//   shared memory (bf16, rows padded by 8 elements so fragment loads and ldmatrix rows
//   of a warp hit distinct banks), double-buffered, 34-36 KiB:
//     k_s[2][BN][head_dim + 8]     key j, dim d
//     v_s[2][BN][head_dim + 8]     key j, dim d
//
// Registers (ptxas -v, sm_90a, BF16): 255 at head_dim 128 with ~128 bytes of spill
// loads (where they land is not inspected: no cuobjdump here), ~252 at 64 without
// spills; so 2 CTAs (8 warps) per SM.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/prefill/mma_bf16.cuh"
#include "kernels/cuda/prefill/prefill_attention_params.h"

namespace strata::cuda {

inline const char* CheckPrefillAttention(const PrefillAttentionParams& p) {
  const PagedKvView& kv = p.kv;
  if (!kv.k || !kv.v || !kv.block_tables || !p.q || !p.out || !p.q_start || !p.q_pos0 || !p.tile_start) {
    return "PrefillAttention: null pointer";
  }
  if (KvDtypeBytes(kv.dtype) == 0) return "PrefillAttention: unknown KV dtype";
  if (KvDtypeHasScales(kv.dtype) && (!kv.k_scale || !kv.v_scale)) {
    return "PrefillAttention: quantised KV dtype without scale pools";
  }
  if (kv.head_dim != 64 && kv.head_dim != 128) return "PrefillAttention: head_dim must be 64 or 128";
  if (kv.num_blocks <= 1 || kv.block_size <= 0 || kv.n_kv_heads <= 0 || kv.max_blocks_per_seq <= 0 ||
      kv.n_seqs <= 0 || p.n_tiles < 0) {
    return "PrefillAttention: bad shape";
  }
  if (kv.n_kv_heads > 65535) return "PrefillAttention: more than 65535 KV heads";
  if (p.n_heads <= 0 || p.n_heads % kv.n_kv_heads != 0) {
    return "PrefillAttention: n_heads is not a multiple of n_kv_heads";
  }
  if (p.plan_group != p.n_heads / kv.n_kv_heads) return "PrefillAttention: plan built for another GQA group";
  const int64_t row = static_cast<int64_t>(p.n_heads) * kv.head_dim;
  if (p.q_stride < row || p.out_stride < row) return "PrefillAttention: q/out stride < n_heads*head_dim";
  if (kv.dtype == KvDtype::kBF16 &&
      ((reinterpret_cast<uintptr_t>(kv.k) | reinterpret_cast<uintptr_t>(kv.v)) & 15u) != 0) {
    return "PrefillAttention: bf16 KV pools must be 16-byte aligned";
  }
  return nullptr;
}

inline KernelShape PrefillAttentionShape(const PrefillAttentionParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.n_tiles), static_cast<unsigned>(p.kv.n_kv_heads)),
                     dim3(kPrefillThreads), 0};
}

// The sequence owning tile `tile`: the last s with tile_start[s] <= tile (sequences
// without rows own no tile and are skipped). Requires 0 <= tile < tile_start[n_seqs].
__host__ __device__ __forceinline__ int32_t PrefillTileSequence(const int32_t* tile_start, int32_t n_seqs,
                                                               int32_t tile) {
  int32_t lo = 0, hi = n_seqs;  // tile_start[lo] <= tile < tile_start[hi]
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (tile_start[mid] <= tile) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// 32-bit shared-memory accesses of bf16 pairs (memcpy on the host: no aliasing UB).
__device__ __forceinline__ uint32_t PrefillLoadPair(const uint16_t* src) {
#ifdef __CUDACC__
  return *reinterpret_cast<const uint32_t*>(src);
#else
  uint32_t v;
  __builtin_memcpy(&v, src, sizeof(v));
  return v;
#endif
}
__device__ __forceinline__ void PrefillStore8(uint16_t* dst, const uint16_t (&src)[8]) {
#ifdef __CUDACC__
  int4 packed;
  packed.x = static_cast<int>(src[0] | (static_cast<uint32_t>(src[1]) << 16));
  packed.y = static_cast<int>(src[2] | (static_cast<uint32_t>(src[3]) << 16));
  packed.z = static_cast<int>(src[4] | (static_cast<uint32_t>(src[5]) << 16));
  packed.w = static_cast<int>(src[6] | (static_cast<uint32_t>(src[7]) << 16));
  *reinterpret_cast<int4*>(dst) = packed;  // 16-byte aligned: row strides are multiples of 8 elements
#else
  __builtin_memcpy(dst, src, sizeof(src));
#endif
}

// Eight consecutive elements (flat pool index `off`) of one (token, KV head) row as
// bf16 bits, times the row's scale `sc` (1 for the unscaled dtypes).
template <KvDtype DT>
__device__ __forceinline__ void PrefillLoadChunk(const void* pool, int64_t off, float sc, uint16_t (&dst)[8]) {
  if constexpr (DT == KvDtype::kBF16) {
    // 16-byte load (pools are 16-byte aligned, rows are 128/256 bytes): no conversion.
#ifdef __CUDACC__
    const int4 raw = *reinterpret_cast<const int4*>(static_cast<const uint16_t*>(pool) + off);
    const int words[4] = {raw.x, raw.y, raw.z, raw.w};
    STRATA_PREFILL_UNROLL
    for (int e = 0; e < 4; ++e) {
      dst[2 * e] = static_cast<uint16_t>(static_cast<uint32_t>(words[e]) & 0xFFFFu);
      dst[2 * e + 1] = static_cast<uint16_t>(static_cast<uint32_t>(words[e]) >> 16);
    }
#else
    __builtin_memcpy(dst, static_cast<const uint16_t*>(pool) + off, sizeof(dst));
#endif
  } else {
    STRATA_PREFILL_UNROLL
    for (int e = 0; e < 8; ++e) dst[e] = F32ToBf16Bits(KvLoadElement(pool, DT, off + e) * sc);
  }
}

// Keys per K/V tile: 64 for head_dim 64; 32 for head_dim 128, which keeps a lane's
// O (2 x 16 x 4 floats), Q (2 x 8 x 4 regs) and S (2 x 4 x 4) within 255 registers.
template <int D>
inline constexpr int kPrefillBlockN = D == 128 ? 32 : 64;

template <int D, KvDtype DT>
__global__ void __launch_bounds__(kPrefillThreads) PrefillAttentionKernel(PrefillAttentionParams p) {
  constexpr int MT = kPrefillWarpTiles;  // m16 tiles per warp: each K/V fragment feeds MT MMAs
  constexpr int BN = kPrefillBlockN<D>;
  static_assert(D % 16 == 0 && BN % 16 == 0 && kPrefillBlockM == 4 * MT * 16 && kPrefillThreads == 128,
                "4 warps x MT x 16 rows");
  constexpr int KS = D + 8;  // k_s / v_s row stride (bf16 elements; 16-byte multiple)
  constexpr float kLog2e = 1.4426950408889634f;
  __align__(16) __shared__ uint16_t k_s[2][BN * KS];  // double-buffered: tile kt in [kt & 1]
  __align__(16) __shared__ uint16_t v_s[2][BN * KS];

  const PagedKvView& kv = p.kv;
  const int32_t group = p.n_heads / kv.n_kv_heads;
  const int32_t kvh = static_cast<int32_t>(blockIdx.y);
  const int32_t tile = static_cast<int32_t>(blockIdx.x);
  const int32_t s = PrefillTileSequence(p.tile_start, kv.n_seqs, tile);
  const int32_t q0 = p.q_start[s];
  const int64_t rows = static_cast<int64_t>(p.q_start[s + 1] - q0) * group;  // packed rows of s
  const int32_t pos0 = p.q_pos0[s];
  // Tiles of a sequence run last to first: the longest causal rows start first.
  const int64_t local = (p.tile_start[s + 1] - 1) - tile;
  const int64_t row0 = local * kPrefillBlockM;
  const int64_t last_row = rows - 1 < row0 + kPrefillBlockM - 1 ? rows - 1 : row0 + kPrefillBlockM - 1;
  const int32_t n_keys = pos0 + static_cast<int32_t>(last_row / group) + 1;  // causal bound of the tile
  const int32_t min_pos = pos0 + static_cast<int32_t>(row0 / group);
  const int32_t* table = kv.block_tables + static_cast<int64_t>(s) * kv.max_blocks_per_seq;
  // Keys past the block table read zeros (and are counted once per CTA).
  const bool table_short = (n_keys - 1) / kv.block_size >= kv.max_blocks_per_seq;
  if (table_short && threadIdx.x == 0 && p.bad_blocks) atomicAdd(p.bad_blocks, 1);

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  // This lane's rows: C rows (group, group + 8) of each of its warp's MT m16 tiles.
  // Rows past the sequence repeat its last row: computed, never stored. Only the
  // positions stay live through the key loop (the rest is recomputed: registers).
  struct Row {
    int64_t tok;    // token index into q / out
    int32_t head;   // query head
    int32_t pos;    // position
    bool ok;        // inside the sequence
  };
  auto row_of = [&](int mt, int h) {
    const int64_t r = row0 + (warp * MT + mt) * 16 + MmaCRow(lane, 2 * h);  // MmaCRowHalf(2h) = h
    Row row;
    row.ok = r < rows;
    const int64_t rc = row.ok ? r : rows - 1;
    row.tok = q0 + rc / group;
    row.head = kvh * group + static_cast<int32_t>(rc % group);
    row.pos = pos0 + static_cast<int32_t>(rc / group);
    return row;
  };
  int32_t row_pos[MT][2];
  STRATA_PREFILL_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    STRATA_PREFILL_UNROLL
    for (int h = 0; h < 2; ++h) row_pos[mt][h] = row_of(mt, h).pos;
  }

  // Q as bf16 A fragments, one per (m16 tile, k16 step of head_dim).
  uint32_t qa[MT][D / 16][4];
  STRATA_PREFILL_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    STRATA_PREFILL_UNROLL
    for (int kk = 0; kk < D / 16; ++kk) {
      STRATA_PREFILL_UNROLL
      for (int r = 0; r < 4; ++r) {
        float v2[2];
        STRATA_PREFILL_UNROLL
        for (int e = 0; e < 2; ++e) {
          const int i = 2 * r + e;
          const Row row = row_of(mt, MmaARowHalf(i));
          v2[e] = p.q[row.tok * p.q_stride + static_cast<int64_t>(row.head) * D + kk * 16 + MmaACol(lane, i)];
        }
        qa[mt][kk][r] = PackBf16x2(v2[0], v2[1]);
      }
    }
  }

  float o[MT][D / 8][4];
  float m[MT][2], l[MT][2];  // running row max (log2 domain); this lane's part of the row sum
  STRATA_PREFILL_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    STRATA_PREFILL_UNROLL
    for (int nb = 0; nb < D / 8; ++nb) {
      STRATA_PREFILL_UNROLL
      for (int i = 0; i < 4; ++i) o[mt][nb][i] = 0.0f;
    }
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }
  const float scale_log2 = p.scale * kLog2e;
  const int n_ktiles = (n_keys + BN - 1) / BN;

  // Gathers K/V tile `kt` into buffer `buf`: thread t takes key row t % BN (one block
  // lookup) and its chunks of 8 dims from t / BN on, so the 32 lanes of a warp write
  // 32 rows 4 banks apart. BF16 rows are copied as they are with cp.async (in flight
  // while the previous tile is computed); the other dtypes are decoded to bf16 here.
  static_assert(kPrefillThreads % BN == 0, "each thread keeps one key row");
  auto load_tile = [&](int kt, int buf) {
    const int r = static_cast<int>(threadIdx.x) % BN;
    const int32_t key = kt * BN + r;
    int64_t base = -1;  // flat pool index of the row, -1: zeros
    float ksc = 1.0f, vsc = 1.0f;
    if (key < n_keys && !table_short) {
      const int32_t block = table[key / kv.block_size];
      if (block > 0 && block < kv.num_blocks) {
        const int64_t slot = key % kv.block_size;
        base = ((static_cast<int64_t>(block) * kv.n_kv_heads + kvh) * kv.block_size + slot) * D;
        ksc = KvRowScale(kv, kv.k_scale, block, kvh, slot);
        vsc = KvRowScale(kv, kv.v_scale, block, kvh, slot);
      } else if (threadIdx.x < BN && p.bad_blocks) {
        atomicAdd(p.bad_blocks, 1);
      }
    }
    STRATA_PREFILL_UNROLL
    for (int d0 = (static_cast<int>(threadIdx.x) / BN) * 8; d0 < D; d0 += (kPrefillThreads / BN) * 8) {
      uint16_t* kd = &k_s[buf][r * KS + d0];
      uint16_t* vd = &v_s[buf][r * KS + d0];
      if constexpr (DT == KvDtype::kBF16) {
        if (base >= 0) {
          CpAsync16(kd, static_cast<const uint16_t*>(kv.k) + base + d0);
          CpAsync16(vd, static_cast<const uint16_t*>(kv.v) + base + d0);
          continue;
        }
      }
      uint16_t kb[8] = {0, 0, 0, 0, 0, 0, 0, 0}, vb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (base >= 0) {
        PrefillLoadChunk<DT>(kv.k, base + d0, ksc, kb);
        PrefillLoadChunk<DT>(kv.v, base + d0, vsc, vb);
      }
      PrefillStore8(kd, kb);
      PrefillStore8(vd, vb);
    }
  };

  load_tile(0, 0);
  CpAsyncCommit();
  for (int kt = 0; kt < n_ktiles; ++kt) {
    const int32_t k0 = kt * BN;
    const int buf = kt & 1;
    // Tile kt + 1 goes into the other buffer, last read in iteration kt - 1 (whose
    // closing barrier every thread has passed). One group per iteration, even empty,
    // so "all but the newest group" is always tile kt.
    if (kt + 1 < n_ktiles) load_tile(kt + 1, buf ^ 1);
    CpAsyncCommit();
    CpAsyncWait<1>();
    __syncthreads();  // tile kt is in k_s[buf] / v_s[buf] for every thread

    // S = Q K^T: B[k][n] = K[key n][dim k], a bf16 pair along the key's row; each B
    // fragment serves the warp's MT m16 tiles.
    float sc[MT][BN / 8][4];
    STRATA_PREFILL_UNROLL
    for (int nb = 0; nb < BN / 8; ++nb) {
      STRATA_PREFILL_UNROLL
      for (int mt = 0; mt < MT; ++mt) {
        STRATA_PREFILL_UNROLL
        for (int i = 0; i < 4; ++i) sc[mt][nb][i] = 0.0f;
      }
      STRATA_PREFILL_UNROLL
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t b[2];
        STRATA_PREFILL_UNROLL
        for (int r = 0; r < 2; ++r) {
          const int key = nb * 8 + MmaBCol(lane, 2 * r), dim = kk * 16 + MmaBRow(lane, 2 * r);
          b[r] = PrefillLoadPair(&k_s[buf][key * KS + dim]);
        }
        STRATA_PREFILL_UNROLL
        for (int mt = 0; mt < MT; ++mt) Mma16816(sc[mt][nb], qa[mt][kk], b);
      }
    }

    // Causal mask (only tiles reaching past the CTA's first row), online softmax.
    const bool mask = k0 + BN - 1 > min_pos;
    STRATA_PREFILL_UNROLL
    for (int mt = 0; mt < MT; ++mt) {
      float tile_max[2] = {-INFINITY, -INFINITY};
      STRATA_PREFILL_UNROLL
      for (int nb = 0; nb < BN / 8; ++nb) {
        STRATA_PREFILL_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int h = MmaCRowHalf(i);
          float v = sc[mt][nb][i] * scale_log2;
          if (mask && k0 + nb * 8 + MmaCCol(lane, i) > row_pos[mt][h]) v = -INFINITY;
          sc[mt][nb][i] = v;
          tile_max[h] = fmaxf(tile_max[h], v);
        }
      }
      float alpha[2];
      STRATA_PREFILL_UNROLL
      for (int h = 0; h < 2; ++h) {
        // The 4 lanes of a quad hold one row.
        tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
        tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
        // Key 0 <= every row's position and tile 0 comes first, so m_new is finite.
        const float m_new = fmaxf(m[mt][h], tile_max[h]);
        alpha[h] = exp2f(m[mt][h] - m_new);
        m[mt][h] = m_new;
        l[mt][h] *= alpha[h];
      }
      STRATA_PREFILL_UNROLL
      for (int nb = 0; nb < BN / 8; ++nb) {
        STRATA_PREFILL_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int h = MmaCRowHalf(i);
          const float e = exp2f(sc[mt][nb][i] - m[mt][h]);
          sc[mt][nb][i] = e;
          l[mt][h] += e;
        }
      }
      STRATA_PREFILL_UNROLL
      for (int nb = 0; nb < D / 8; ++nb) {
        STRATA_PREFILL_UNROLL
        for (int i = 0; i < 4; ++i) o[mt][nb][i] *= alpha[MmaCRowHalf(i)];
      }
    }

    // O += P V: A = P (from the S accumulators of blocks 2kk, 2kk+1); B[k][n] =
    // V[key k][dim n] by ldmatrix.trans from row-major v_s, two n8 blocks per call:
    // lanes 0-7 / 8-15 / 16-23 / 24-31 address keys 0-7 / 8-15 / 0-7 / 8-15 of the
    // k16 step at dims +0 / +0 / +8 / +8, giving b[0..1] of block 2j, b[0..1] of 2j+1.
    STRATA_PREFILL_UNROLL
    for (int kk = 0; kk < BN / 16; ++kk) {
      uint32_t pa[MT][4];
      STRATA_PREFILL_UNROLL
      for (int mt = 0; mt < MT; ++mt) {
        STRATA_PREFILL_UNROLL
        for (int r = 0; r < 4; ++r) {
          pa[mt][r] = PackBf16x2(sc[mt][2 * kk + MmaAFromCBlock(2 * r)][MmaAFromCElem(2 * r)],
                                 sc[mt][2 * kk + MmaAFromCBlock(2 * r + 1)][MmaAFromCElem(2 * r + 1)]);
        }
      }
      const int key = kk * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
      STRATA_PREFILL_UNROLL
      for (int nb2 = 0; nb2 < D / 16; ++nb2) {
        uint32_t r4[4];
        LdMatrixX4Trans(r4, &v_s[buf][key * KS + nb2 * 16 + 8 * (lane >> 4)]);
        const uint32_t b_lo[2] = {r4[0], r4[1]}, b_hi[2] = {r4[2], r4[3]};
        STRATA_PREFILL_UNROLL
        for (int mt = 0; mt < MT; ++mt) {
          Mma16816(o[mt][2 * nb2], pa[mt], b_lo);
          Mma16816(o[mt][2 * nb2 + 1], pa[mt], b_hi);
        }
      }
    }
    __syncthreads();  // buffer `buf` is refilled in iteration kt + 1
  }

  STRATA_PREFILL_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    STRATA_PREFILL_UNROLL
    for (int h = 0; h < 2; ++h) {
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 1);
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 2);
    }
    STRATA_PREFILL_UNROLL
    for (int h = 0; h < 2; ++h) {
      const Row row = row_of(mt, h);
      if (!row.ok) continue;
      float* dst = p.out + row.tok * p.out_stride + static_cast<int64_t>(row.head) * D;
      const float inv_l = 1.0f / l[mt][h];
      STRATA_PREFILL_UNROLL
      for (int nb = 0; nb < D / 8; ++nb) {
        STRATA_PREFILL_UNROLL
        for (int i = 2 * h; i < 2 * h + 2; ++i) dst[nb * 8 + MmaCCol(lane, i)] = o[mt][nb][i] * inv_l;
      }
    }
  }
}

}  // namespace strata::cuda
