// Paged decode attention (split-KV, GQA): the kernel bodies, shared by the nvcc
// launchers and the host harness.
//
// Main kernel: one CTA of 128 threads per (token, KV head, head chunk, partition):
//
//   grid.x = tokens   grid.y = n_kv_heads * head_chunks   grid.z = partitions
//
// A CTA serves kHeads query heads of one GQA group (1, 2, 4 or 8; a larger group
// runs in head chunks), so each K/V element it loads is used kHeads times. Lanes
// cover head_dim in slices of 8 elements (one 16-byte load for f16/bf16, 8 bytes for
// fp8/int8, 32 bytes for f32): kLanes = 8, 16 or 32 lanes per KV token (head_dim
// <= 64, <= 128, <= 256; lanes past head_dim idle), so the CTA works on 128 / kLanes
// tokens at once (head_dim 128: 16 lanes, 8 tokens, a half-warp reads one 256-byte
// K row, coalesced):
//
//   lane:   0        1        ...  15      | 16  ...  31
//   dims:   0..7     8..15    ...  120..127| 0..7 ... 120..127
//   token:  j                              | j + 1
//
// The CTA walks its positions [begin, end) in chunks of kDecodeChunk (256):
//   0. Row index of every position of the chunk (one block-table lookup each) into
//      shared memory, shared by K, V and the scales.
//   1. QK: each lane group loads kT tokens (4; 2 with 8 heads) before use, makes
//      kT x kHeads partial dots from 8 decoded K values and the q slices in
//      registers, and sums them over its lanes with a reduce-scatter (about one
//      shuffle per dot, ReduceScatterLanes); logits times scale and row scale go to
//      shared memory, token-major [chunk][kHeads].
//   2. Online softmax per head (one warp per head): chunk max, running max m,
//      rescale factor alpha = exp(m_old - m_new), p = exp(logit - m), running sum l.
//   3. PV: acc[kHeads][8] per lane in registers, rescaled by alpha, += p * V (a
//      token's kHeads weights in one 16-byte shared load).
// At the end the token groups' accumulators are summed through shared memory;
// without a split the CTA writes out = acc / l, with one it writes (m, l, acc) to
// the workspace and DecodeAttentionReduceKernel merges partitions:
//   out = sum_p exp(m_p - M) acc_p / sum_p exp(m_p - M) l_p,  M = max_p m_p.
//
// Scaled dtypes (fp8, int8) fold the row scale into the logit / the weight p, so the
// inner loops work on raw codes. Softmax uses expf (not __expf) to stay close to the
// CPU reference's std::exp.
//
// Tuning notes (ptxas, sm_90a; not measured on a GPU here): kHeads 4 uses ~110-120
// registers, no spills, 18 KiB static shared: 4 CTAs (16 warps) per SM; kHeads 8
// ~205 registers: 2 CTAs per SM (a __launch_bounds__ min-blocks of 3 is the first
// thing to try for GQA 8). Per lane kT loads are in flight in each phase: 64 bytes
// for bf16, 32 for fp8; fp8 may want kT = 8 (more bytes in flight) if the bench is
// latency-bound. fp8 costs ~4 ALU ops per element to decode (KvDecode8) plus kHeads
// FMAs per element per phase, so fp8 with GQA 4 is near the FP32 issue limit at
// full HBM bandwidth; the next step there is tensor cores (mma.sync m16n8k16 with
// e4m3 -> f16 cvt, exact) for QK and PV, which the host harness cannot run (device
// parity tests only). Also: cp.async/TMA double buffering of K/V tiles, a
// persistent grid for short batches.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/attention/decode_attention_params.h"
#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

#ifdef __CUDACC__
#include <cuda_fp16.h>
#endif

// `#pragma unroll` for nvcc only (g++ warns about pragmas it does not know).
#ifdef __CUDACC__
#define STRATA_ATTN_UNROLL _Pragma("unroll")
#else
#define STRATA_ATTN_UNROLL
#endif

namespace strata::cuda {

inline constexpr int kDecodeThreads = 128;
inline constexpr int kDecodeChunk = 256;  // positions per online-softmax step
inline constexpr int kDecodeUnroll = 4;   // tokens per lane group loaded before use
inline constexpr int kDecodeMaxHeadDim = 256;

// How a launch runs: heads per CTA, head chunks per KV head, partitions, shapes.
struct DecodeAttentionPlan {
  int heads_per_cta = 1;   // 1, 2, 4 or 8 (the template argument kHeads)
  int lanes = 8;           // lanes per KV token: 8, 16 or 32 (the template argument kLanes)
  int head_chunks = 1;     // ceil(group / heads_per_cta)
  int64_t partitions = 1;  // > 1: split, the reduce kernel runs
  KernelShape main;
  KernelShape reduce;
};

inline const char* CheckDecodeAttention(const DecodeAttentionParams& p) {
  const PagedKvView& kv = p.kv;
  if (KvDtypeBytes(kv.dtype) == 0) return "DecodeAttention: unknown dtype";
  if (!kv.k || !kv.v || !kv.block_tables || !p.q || !p.out || !p.token_seq || !p.positions) {
    return "DecodeAttention: null pointer";
  }
  if (KvDtypeHasScales(kv.dtype) && (!kv.k_scale || !kv.v_scale)) {
    return "DecodeAttention: fp8/int8 view without k_scale/v_scale";
  }
  if (kv.num_blocks <= 1 || kv.block_size <= 0 || kv.n_kv_heads <= 0 || kv.max_blocks_per_seq <= 0 ||
      kv.n_seqs < 0 || p.tokens < 0 || p.n_heads <= 0 || p.max_context <= 0 || p.partition_tokens < 0) {
    return "DecodeAttention: bad shape";
  }
  if (kv.head_dim <= 0 || kv.head_dim % 8 != 0 || kv.head_dim > kDecodeMaxHeadDim) {
    return "DecodeAttention: head_dim must be a multiple of 8 in [8, 256]";
  }
  if (p.n_heads % kv.n_kv_heads != 0) return "DecodeAttention: n_heads not a multiple of n_kv_heads";
  if (p.q_stride < static_cast<int64_t>(p.n_heads) * kv.head_dim) return "DecodeAttention: q_stride too small";
  if (p.tokens > 0x7fffffff) return "DecodeAttention: more than 2^31-1 tokens";
  // Vector loads: a row starts at a multiple of 8 elements, so 16-byte pools suffice.
  if ((reinterpret_cast<uintptr_t>(kv.k) | reinterpret_cast<uintptr_t>(kv.v)) % 16 != 0) {
    return "DecodeAttention: K/V pools not 16-byte aligned";
  }
  const int64_t parts = DecodeAttentionPartitions(p);
  if (parts > 65535) return "DecodeAttention: more than 65535 partitions (raise partition_tokens)";
  if (parts > 1 && (!p.workspace || reinterpret_cast<uintptr_t>(p.workspace) % 16 != 0)) {
    return "DecodeAttention: split needs a 16-byte aligned workspace";
  }
  return nullptr;
}

// Precondition: CheckDecodeAttention(p) == nullptr.
inline DecodeAttentionPlan PlanDecodeAttention(const DecodeAttentionParams& p) {
  DecodeAttentionPlan plan;
  const int group = p.n_heads / p.kv.n_kv_heads;
  // 1, 2, 4 or 8 heads per CTA; a group of 3 or 5..7 runs with idle head slots,
  // a group above 8 in several chunks (each reading the KV head again).
  plan.heads_per_cta = group == 1 ? 1 : group == 2 ? 2 : group <= 4 ? 4 : 8;
  plan.head_chunks = (group + plan.heads_per_cta - 1) / plan.heads_per_cta;
  plan.lanes = p.kv.head_dim <= 64 ? 8 : p.kv.head_dim <= 128 ? 16 : 32;
  plan.partitions = DecodeAttentionPartitions(p);
  plan.main = KernelShape{dim3(static_cast<unsigned>(p.tokens),
                               static_cast<unsigned>(p.kv.n_kv_heads * plan.head_chunks),
                               static_cast<unsigned>(plan.partitions)),
                          dim3(kDecodeThreads), 0};
  plan.reduce = KernelShape{dim3(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.n_heads)),
                            dim3(kDecodeThreads), 0};
  return plan;
}

// 8 stored elements of one row: 32, 16 or 8 bytes.
template <KvDtype kDtype>
struct alignas(KvDtypeBytesConst(kDtype) * 8 >= 16 ? 16 : 8) KvRaw8 {
  uint32_t w[KvDtypeBytesConst(kDtype) * 2];
};

// Elements [i, i + 8) of `pool` (i a multiple of 8): one or two vector loads.
template <KvDtype kDtype>
__device__ __forceinline__ KvRaw8<kDtype> KvLoadRaw8(const void* pool, int64_t i) {
  return *reinterpret_cast<const KvRaw8<kDtype>*>(static_cast<const uint8_t*>(pool) + i * KvDtypeBytesConst(kDtype));
}

// Decodes 8 stored elements, before the row scale. Equal in value to KvLoadElement
// for every code (NaN codes included); a zero KvRaw8 decodes to zeros.
template <KvDtype kDtype>
__device__ __forceinline__ void KvDecode8(const KvRaw8<kDtype>& r, float x[8]) {
  if constexpr (kDtype == KvDtype::kFp8E4M3 || kDtype == KvDtype::kFp8E4M3Unscaled) {
    // 4 ALU ops per element; the exact NaN decode only when a NaN code is present
    // (SWAR test: a byte with 0x7F in its low 7 bits becomes 0x80 after + 1).
STRATA_ATTN_UNROLL
    for (int e = 0; e < 8; ++e) x[e] = KvE4M3TopToF32NoNaN(r.w[e / 4] << (24 - 8 * (e % 4)));
    const uint32_t nan_bytes =
        (((r.w[0] & 0x7F7F7F7Fu) + 0x01010101u) | ((r.w[1] & 0x7F7F7F7Fu) + 0x01010101u)) & 0x80808080u;
    if (nan_bytes != 0) {
STRATA_ATTN_UNROLL
      for (int e = 0; e < 8; ++e) x[e] = KvE4M3TopToF32(r.w[e / 4] << (24 - 8 * (e % 4)));
    }
  } else {
STRATA_ATTN_UNROLL
    for (int e = 0; e < 8; ++e) {
      if constexpr (kDtype == KvDtype::kF32) {
        x[e] = KvBitsToF32(r.w[e]);
      } else if constexpr (kDtype == KvDtype::kF16) {
        const uint32_t h = (r.w[e / 2] >> (16 * (e % 2))) & 0xFFFFu;
#ifdef __CUDA_ARCH__
        x[e] = __half2float(__ushort_as_half(static_cast<unsigned short>(h)));  // exact
#else
        x[e] = KvF16ToF32Fast(h);
#endif
      } else if constexpr (kDtype == KvDtype::kBF16) {
        x[e] = KvBitsToF32(e % 2 == 0 ? r.w[e / 2] << 16 : r.w[e / 2] & 0xFFFF0000u);
      } else {  // kInt8
        x[e] = static_cast<float>(static_cast<int8_t>((r.w[e / 4] >> (8 * (e % 4))) & 0xFFu));
      }
    }
  }
}

// Sums kN values per lane over the kLanes lanes of a lane group (offsets kO, kO/2,
// ..., 1; kO = kLanes / 2) as a reduce-scatter: at each offset a lane keeps half of
// its values and sends the other half to its partner, so the kN values cost about
// kN shuffles instead of kN * log2(kLanes). Afterwards a[0 .. max(1, kN / kLanes))
// hold full sums of the original indices base + i. With kN < kLanes the last
// offsets are a plain butterfly (every lane ends with the same value).
template <int kN, int kO>
__device__ __forceinline__ void ReduceScatterLanes(float* a, int lane_in_group, int& base) {
  if constexpr (kO >= 1) {
    if constexpr (kN > 1) {
      const bool upper = (lane_in_group & kO) != 0;
STRATA_ATTN_UNROLL
      for (int i = 0; i < kN / 2; ++i) {
        const float send = upper ? a[i] : a[i + kN / 2];
        const float keep = upper ? a[i + kN / 2] : a[i];
        a[i] = keep + __shfl_xor_sync(0xffffffffu, send, kO);
      }
      if (upper) base += kN / 2;
      ReduceScatterLanes<kN / 2, kO / 2>(a, lane_in_group, base);
    } else {
      a[0] += __shfl_xor_sync(0xffffffffu, a[0], kO);
      ReduceScatterLanes<1, kO / 2>(a, lane_in_group, base);
    }
  }
}

// Whether token t (sequence s, position pos) may be attended at all; its blocks are
// checked separately.
__device__ __forceinline__ bool DecodeTokenOk(const DecodeAttentionParams& p, int32_t s, int32_t pos) {
  return s >= 0 && s < p.kv.n_seqs && pos >= 0 && pos < p.max_context &&
         pos / p.kv.block_size < p.kv.max_blocks_per_seq;
}

__device__ __forceinline__ float DecodeNaN() { return KvBitsToF32(0x7FC00000u); }

template <KvDtype kDtype, int kHeads, int kLanes>
__global__ void __launch_bounds__(kDecodeThreads) DecodeAttentionKernel(DecodeAttentionParams p) {
  constexpr int kGroups = kDecodeThreads / kLanes;  // KV tokens in flight per step of u
  constexpr int kT = kHeads >= 8 ? 2 : kDecodeUnroll;  // tokens per lane group per step
  constexpr int kV = kT * kHeads;                     // partial dots per lane
  constexpr int kOwn = kV > kLanes ? kV / kLanes : 1;  // full dots per lane afterwards
  constexpr bool kScaled = kDtype == KvDtype::kFp8E4M3 || kDtype == KvDtype::kInt8;
  // Logits [kHeads][kDecodeChunk] during the walk; then [kGroups][kHeads][head_dim]
  // accumulators (kGroups * head_dim <= 128 * 8 = 1024).
  constexpr int kSharedFloats = kHeads * 1024 > kHeads * kDecodeChunk ? kHeads * 1024 : kHeads * kDecodeChunk;
  __shared__ float4 s_buf4[kSharedFloats / 4];  // float4: 16-byte aligned for the PV loads
  float* s_buf = reinterpret_cast<float*>(s_buf4);
  __shared__ float s_m[kHeads], s_l[kHeads], s_alpha[kHeads];
  __shared__ int64_t s_row[kDecodeChunk];
  __shared__ int s_bad;

  const PagedKvView& kv = p.kv;
  const int64_t t = blockIdx.x;
  const int group = p.n_heads / kv.n_kv_heads;
  const int chunks = (group + kHeads - 1) / kHeads;
  const int kvh = static_cast<int>(blockIdx.y) / chunks;
  const int h0 = kvh * group + (static_cast<int>(blockIdx.y) % chunks) * kHeads;
  const int gc = kHeads < kvh * group + group - h0 ? kHeads : kvh * group + group - h0;  // heads here
  const int tid = static_cast<int>(threadIdx.x);
  const int hd = kv.head_dim;
  const bool split = gridDim.z > 1;
  const int64_t parts = gridDim.z;
  const int32_t s = p.token_seq[t];
  const int32_t pos = p.positions[t];
  float* out_row = p.out + t * static_cast<int64_t>(p.n_heads) * hd;
  float* ws_ml = static_cast<float*>(p.workspace);
  float* ws_acc = ws_ml ? ws_ml + p.tokens * p.n_heads * parts * 2 : nullptr;
  // (m, l) of head h of this token for this CTA's partition; acc at ml_index / 2 * hd.
  auto ml_index = [&](int h) { return ((t * p.n_heads + h) * parts + blockIdx.z) * 2; };

  if (!DecodeTokenOk(p, s, pos)) {  // uniform over the CTA
    if (!split) {
      for (int i = tid; i < gc * hd; i += kDecodeThreads) out_row[h0 * hd + i] = DecodeNaN();
      if (blockIdx.y == 0 && tid == 0 && p.bad_tokens) atomicAdd(p.bad_tokens, 1);
    }
    return;  // split: the reduce kernel re-checks the token and writes the NaN row
  }
  const int64_t ctx = static_cast<int64_t>(pos) + 1;
  const int64_t begin = split ? static_cast<int64_t>(blockIdx.z) * p.partition_tokens : 0;
  const int64_t end = split && begin + p.partition_tokens < ctx ? begin + p.partition_tokens : ctx;
  if (begin >= end) return;  // a partition past this token's context: nothing to merge

  const int32_t* table = kv.block_tables + static_cast<int64_t>(s) * kv.max_blocks_per_seq;
  if (tid == 0) s_bad = 0;
  if (tid < kHeads) {
    s_m[tid] = -INFINITY;
    s_l[tid] = 0.0f;
  }
  __syncthreads();
  for (int64_t b = begin / kv.block_size + tid; b <= (end - 1) / kv.block_size; b += kDecodeThreads) {
    const int32_t id = table[b];
    if (id <= 0 || id >= kv.num_blocks) s_bad = 1;
  }
  __syncthreads();
  if (s_bad) {  // uniform
    if (!split) {
      for (int i = tid; i < gc * hd; i += kDecodeThreads) out_row[h0 * hd + i] = DecodeNaN();
      if (blockIdx.y == 0 && tid == 0 && p.bad_tokens) atomicAdd(p.bad_tokens, 1);
    } else if (tid < gc) {
      ws_ml[ml_index(h0 + tid) + 1] = -1.0f;  // a negative sum flags a bad partition
    }
    return;
  }

  // Lane groups: kLanes lanes per KV token, each lane 8 dims (lanes past head_dim idle).
  const int li = tid % kLanes;
  const int gi = tid / kLanes;
  const int d0 = li * 8;
  const bool active = d0 < hd;
  // After the QK reduce-scatter, lanes whose low bits were summed by the butterfly
  // hold duplicates; only the first of each writes.
  const bool qk_writer = kV >= kLanes || (li & (kLanes / kV - 1)) == 0;

  float qr[kHeads][8];
  float acc[kHeads][8];
STRATA_ATTN_UNROLL
  for (int g = 0; g < kHeads; ++g) {
STRATA_ATTN_UNROLL
    for (int e = 0; e < 8; ++e) {
      qr[g][e] = (active && g < gc) ? p.q[t * p.q_stride + static_cast<int64_t>(h0 + g) * hd + d0 + e] : 0.0f;
      acc[g][e] = 0.0f;
    }
  }

  float* logits = s_buf;  // [kDecodeChunk][kHeads]: PV reads a token's kHeads weights at once
  for (int64_t c0 = begin; c0 < end; c0 += kDecodeChunk) {
    const int n = static_cast<int>(end - c0 < kDecodeChunk ? end - c0 : kDecodeChunk);
    // Row index (scale index; element offset / head_dim) of each position of the
    // chunk, shared by K, V and their scales: one table lookup and division per
    // position instead of one per lane and phase.
    for (int j = tid; j < n; j += kDecodeThreads) {
      const int64_t jp = c0 + j;
      s_row[j] = KvScaleIndex(kv, table[jp / kv.block_size], kvh, jp % kv.block_size);
    }
    __syncthreads();
    // 1. QK: token j0 + u * kGroups + gi for u < kT. Every thread runs the same trip
    // count (the shuffles need whole warps); missing tokens load zeros.
    for (int j0 = 0; j0 < n; j0 += kGroups * kT) {
      KvRaw8<kDtype> raw[kT];
STRATA_ATTN_UNROLL
      for (int u = 0; u < kT; ++u) {
        const int j = j0 + u * kGroups + gi;
        raw[u] = KvRaw8<kDtype>{};
        if (j < n && active) raw[u] = KvLoadRaw8<kDtype>(kv.k, s_row[j] * hd + d0);
      }
      float a[kV];
STRATA_ATTN_UNROLL
      for (int u = 0; u < kT; ++u) {
        float x[8];
        KvDecode8<kDtype>(raw[u], x);
STRATA_ATTN_UNROLL
        for (int g = 0; g < kHeads; ++g) {
          float dot = 0.0f;
STRATA_ATTN_UNROLL
          for (int e = 0; e < 8; ++e) dot += qr[g][e] * x[e];
          a[u * kHeads + g] = dot;
        }
      }
      int base = 0;
      ReduceScatterLanes<kV, kLanes / 2>(a, li, base);
STRATA_ATTN_UNROLL
      for (int i = 0; i < kOwn; ++i) {
        const int v = base + i;
        const int g = v % kHeads;
        const int j = j0 + (v / kHeads) * kGroups + gi;
        if (qk_writer && j < n && g < gc) {
          const float rs = kScaled ? kv.k_scale[s_row[j]] : 1.0f;
          logits[j * kHeads + g] = a[i] * p.scale * rs;
        }
      }
    }
    __syncthreads();
    // 2. Online softmax, one warp per head.
    const int lane = tid % 32;
    for (int g = tid / 32; g < gc; g += kDecodeThreads / 32) {
      float mx = -INFINITY;
      for (int j = lane; j < n; j += 32) mx = fmaxf(mx, logits[j * kHeads + g]);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_old = s_m[g];
      const float m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int j = lane; j < n; j += 32) {
        const float e = expf(logits[j * kHeads + g] - m_new);
        logits[j * kHeads + g] = e;
        sum += e;
      }
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) {
        const float alpha = expf(m_old - m_new);  // 0 on the first chunk (m_old = -inf)
        s_alpha[g] = alpha;
        s_l[g] = s_l[g] * alpha + sum;
        s_m[g] = m_new;
      }
    }
    __syncthreads();
    // 3. PV: no shuffles, so idle lanes skip it.
STRATA_ATTN_UNROLL
    for (int g = 0; g < kHeads; ++g) {
      const float al = g < gc ? s_alpha[g] : 1.0f;
STRATA_ATTN_UNROLL
      for (int e = 0; e < 8; ++e) acc[g][e] *= al;
    }
    if (active) {
      for (int j0 = 0; j0 < n; j0 += kGroups * kT) {
        KvRaw8<kDtype> raw[kT];
STRATA_ATTN_UNROLL
        for (int u = 0; u < kT; ++u) {
          const int j = j0 + u * kGroups + gi;
          raw[u] = KvRaw8<kDtype>{};
          if (j < n) raw[u] = KvLoadRaw8<kDtype>(kv.v, s_row[j] * hd + d0);
        }
STRATA_ATTN_UNROLL
        for (int u = 0; u < kT; ++u) {
          const int j = j0 + u * kGroups + gi;
          if (j >= n) continue;
          const float rs = kScaled ? kv.v_scale[s_row[j]] : 1.0f;
          float x[8];
          KvDecode8<kDtype>(raw[u], x);
          float w[kHeads];  // heads >= gc have stale weights; their acc is never read
          if constexpr (kHeads >= 4) {
STRATA_ATTN_UNROLL
            for (int g = 0; g < kHeads; g += 4) {
              const float4 w4 = *reinterpret_cast<const float4*>(logits + j * kHeads + g);
              w[g] = w4.x;
              w[g + 1] = w4.y;
              w[g + 2] = w4.z;
              w[g + 3] = w4.w;
            }
          } else {
STRATA_ATTN_UNROLL
            for (int g = 0; g < kHeads; ++g) w[g] = logits[j * kHeads + g];
          }
STRATA_ATTN_UNROLL
          for (int g = 0; g < kHeads; ++g) {
            const float wg = w[g] * rs;
STRATA_ATTN_UNROLL
            for (int e = 0; e < 8; ++e) acc[g][e] += wg * x[e];
          }
        }
      }
    }
    __syncthreads();  // the next chunk overwrites the logits and row indices
  }

  // Sum the lane groups' accumulators: s_buf[group][kHeads][head_dim].
  if (active) {
STRATA_ATTN_UNROLL
    for (int g = 0; g < kHeads; ++g) {
STRATA_ATTN_UNROLL
      for (int e = 0; e < 8; ++e) s_buf[(gi * kHeads + g) * hd + d0 + e] = acc[g][e];
    }
  }
  __syncthreads();
  for (int i = tid; i < gc * hd; i += kDecodeThreads) {
    const int g = i / hd, d = i % hd;
    float sum = 0.0f;
    for (int k = 0; k < kGroups; ++k) sum += s_buf[(k * kHeads + g) * hd + d];
    if (!split) {
      out_row[static_cast<int64_t>(h0 + g) * hd + d] = sum / s_l[g];
    } else {
      ws_acc[(ml_index(h0 + g) / 2) * hd + d] = sum;
    }
  }
  if (split && tid < gc) {
    ws_ml[ml_index(h0 + tid)] = s_m[tid];
    ws_ml[ml_index(h0 + tid) + 1] = s_l[tid];
  }
}

// Calls f(kernel) with the DecodeAttentionKernel instantiation of a plan.
template <KvDtype kDtype, int kLanes, typename F>
auto DispatchDecodeAttentionHeads(int heads_per_cta, F&& f) {
  switch (heads_per_cta) {
    case 1: return f(DecodeAttentionKernel<kDtype, 1, kLanes>);
    case 2: return f(DecodeAttentionKernel<kDtype, 2, kLanes>);
    case 4: return f(DecodeAttentionKernel<kDtype, 4, kLanes>);
    default: return f(DecodeAttentionKernel<kDtype, 8, kLanes>);
  }
}

template <KvDtype kDtype, typename F>
auto DispatchDecodeAttention(const DecodeAttentionPlan& plan, F&& f) {
  switch (plan.lanes) {
    case 8: return DispatchDecodeAttentionHeads<kDtype, 8>(plan.heads_per_cta, f);
    case 16: return DispatchDecodeAttentionHeads<kDtype, 16>(plan.heads_per_cta, f);
    default: return DispatchDecodeAttentionHeads<kDtype, 32>(plan.heads_per_cta, f);
  }
}

}  // namespace strata::cuda
