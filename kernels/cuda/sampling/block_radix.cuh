// Block-wide building blocks of the sampling kernel (one CTA per row of logits):
// reductions, the order keys of tokens, and a radix search that finds the token at
// which a cumulative weight crosses a target without sorting the row.
//
// Order keys. A token's rank key is 64 bits, unique per token:
//
//     63                  32 31                   0
//    [ ordered bits of value ][ 0xFFFFFFFF - id    ]
//
// "ordered bits" map a float to a uint32 that compares like the float (-0 taken as
// +0), so a larger rank key means "better" in the CPU Sampler's order (higher logit,
// lower id on ties). The id key is just 0xFFFFFFFF - id (larger = lower id first).
//
// RadixFind walks the tokens of a set S in descending key order without sorting:
// 8 bits of the key per pass (8 passes for rank keys, 4 for id keys), each pass a
// 256-bin histogram (count and weight sum, shared-memory atomics) over the tokens
// that share the prefix fixed so far; thread 0 scans the bins from the top and
// picks the one where the running sum crosses the target. It stops early once the
// picked bin holds one token. At the first level a warp whose tokens all fall in
// one bin adds them with one atomic (shuffle sums), the common case there. With unit weights it is a top-k select (the k-th key).
//
// Preconditions of everything here: 1-D block, a multiple of 32 threads (at most
// 1024), every thread calls (they contain __syncthreads()).
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"

namespace strata::cuda {

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct MinOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a < b ? a : b; }
};

// op over the block, returned to every thread; `identity` fills missing warps.
template <typename T, typename Op>
__device__ __forceinline__ T BlockReduceAll(T v, Op op, T identity) {
  __shared__ T warp_vals[32];
  __shared__ T total;
  const unsigned lane = threadIdx.x % 32u;
  const unsigned warp = threadIdx.x / 32u;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (lane == 0) warp_vals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T t = lane < blockDim.x / 32u ? warp_vals[lane] : identity;
    for (int o = 16; o > 0; o >>= 1) t = op(t, __shfl_xor_sync(0xffffffffu, t, o));
    if (lane == 0) total = t;
  }
  __syncthreads();
  const T r = total;
  __syncthreads();
  return r;
}

__host__ __device__ __forceinline__ uint32_t OrderedBits(float v) {
  const uint32_t b = v == 0.0f ? 0u : KvF32ToBits(v);  // -0 ranks as +0 (they compare equal)
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__host__ __device__ __forceinline__ float FromOrderedBits(uint32_t k) {
  return KvBitsToF32((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

__host__ __device__ __forceinline__ uint64_t RankKey(float v, int32_t id) {
  return static_cast<uint64_t>(OrderedBits(v)) << 32 | (0xFFFFFFFFu - static_cast<uint32_t>(id));
}

__host__ __device__ __forceinline__ int32_t IdOfKey(uint64_t key) {
  return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key));
}

// One row of logits as the chain sees it: NaN is -inf; when the row has a +inf,
// its +inf tokens become 0 and every other token -inf (softmax's limit).
struct SampleRow {
  const float* x;
  int32_t vocab;
  bool any_pos_inf;

  __device__ __forceinline__ float Value(int32_t i) const {
    const float l = x[i];
    const float inf = KvBitsToF32(0x7F800000u);
    if (l != l) return -inf;
    if (any_pos_inf) return l == inf ? 0.0f : -inf;
    return l;
  }
};

// The weight a token of value v carries in a RadixFind.
struct SampleWeight {
  enum Kind : int { kCount, kSoftmaxT1, kSoftmaxT } kind;
  float max_value;
  float temperature;
  __device__ __forceinline__ double operator()(float v) const {
    switch (kind) {
      case kCount: return 1.0;
      case kSoftmaxT1: return static_cast<double>(expf(v - max_value));
      case kSoftmaxT: return static_cast<double>(expf((v - max_value) / temperature));
    }
    return 0.0;
  }
};

// S = the tokens with value > -inf and rank key >= lo, walked in descending key
// order (rank keys, or id keys when id_order). Returns the key prefix P of the first
// token j whose cumulative weight (its own included) is > target (>= when
// inclusive): the tokens of S with key >= P are exactly those up to j. When no token
// reaches the target (rounding), j is the last token of S with a positive weight
// (else the last token of S), as the CPU draw falls back. S must not be empty.
__device__ __forceinline__ uint64_t RadixFind(const SampleRow& row, uint64_t lo, bool id_order,
                                              const SampleWeight& weigh, double target,
                                              bool inclusive) {
  __shared__ uint32_t cnt[256];
  __shared__ double mass[256];
  __shared__ uint64_t s_prefix;
  __shared__ double s_acc;  // weight of the tokens before the prefix's range
  __shared__ int s_done;
  const float neg_inf = KvBitsToF32(0xFF800000u);
  if (threadIdx.x == 0) {
    s_prefix = 0;
    s_acc = 0.0;
    s_done = 0;
  }
  for (int shift = id_order ? 24 : 56; shift >= 0; shift -= 8) {
    for (unsigned b = threadIdx.x; b < 256u; b += blockDim.x) {
      cnt[b] = 0;
      mass[b] = 0.0;
    }
    __syncthreads();
    if (s_done) break;  // uniform: written by thread 0 before the last barrier
    const uint64_t prefix = s_prefix;
    const bool aggregate = shift == (id_order ? 24 : 56);  // the first level
    // The same trip count for every thread: the warp aggregation below shuffles.
    const int32_t steps = static_cast<int32_t>((row.vocab + blockDim.x - 1) / blockDim.x);
    for (int32_t step = 0; step < steps; ++step) {
      const int32_t i = step * static_cast<int32_t>(blockDim.x) + static_cast<int32_t>(threadIdx.x);
      unsigned bin = 256u;  // 256: no token for this bin pass
      double w = 0.0;
      if (i < row.vocab) {
        const float v = row.Value(i);
        const uint64_t rank = v == neg_inf ? 0 : RankKey(v, i);
        const uint64_t key = id_order ? (0xFFFFFFFFu - static_cast<uint32_t>(i)) : rank;
        if (v != neg_inf && rank >= lo &&
            (shift == 56 || (key >> (shift + 8)) == (prefix >> (shift + 8)))) {
          bin = static_cast<unsigned>(key >> shift) & 255u;
          w = weigh(v);
        }
      }
      if (!aggregate) {
        if (bin < 256u) {
          atomicAdd(&cnt[bin], 1u);
          atomicAdd(&mass[bin], w);
        }
        continue;
      }
      // Warp aggregation: values share their leading bits (ids too), so at the first
      // level a warp's tokens usually fall in one bin: then one atomic per warp
      // instead of 32 on the same shared address. (Deeper levels spread the tokens
      // over the bins; aggregating there too costs the harness 4x for little.)
      // One shuffle round carries three fields: the smallest bin, 255 - the largest
      // bin (256 = none) and the count of lanes with a token.
      const bool has = bin < 256u;
      uint64_t f = static_cast<uint64_t>(bin) | static_cast<uint64_t>(has ? 255u - bin : 256u) << 16 |
                   static_cast<uint64_t>(has ? 1u : 0u) << 32;
      for (int o = 16; o > 0; o >>= 1) {
        const uint64_t g = __shfl_xor_sync(0xffffffffu, f, o);
        const uint64_t lo = min(f & 0xFFFFu, g & 0xFFFFu);
        const uint64_t hi = min((f >> 16) & 0xFFFFu, (g >> 16) & 0xFFFFu);
        f = lo | hi << 16 | ((f >> 32) + (g >> 32)) << 32;
      }
      const unsigned lead = static_cast<unsigned>(f & 0xFFFFu);
      if (lead == 256u) continue;  // no token in the warp (uniform over the warp)
      if (lead == 255u - static_cast<unsigned>((f >> 16) & 0xFFFFu)) {  // one bin
        for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xffffffffu, w, o);
        if (threadIdx.x % 32u == 0) {
          atomicAdd(&cnt[lead], static_cast<unsigned>(f >> 32));
          atomicAdd(&mass[lead], w);
        }
      } else if (bin < 256u) {
        atomicAdd(&cnt[bin], 1u);
        atomicAdd(&mass[bin], w);
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double acc = s_acc;
      int chosen = -1;
      for (int b = 255; b >= 0; --b) {
        if (cnt[b] == 0) continue;
        const double m = acc + mass[b];
        if (inclusive ? m >= target : m > target) {
          chosen = b;
          break;
        }
        acc = m;
      }
      if (chosen < 0) {  // nothing reaches the target: the last bin with weight
        int last_any = -1;
        for (int b = 255; b >= 0; --b) {
          if (cnt[b] == 0) continue;
          last_any = b;
          if (mass[b] > 0.0) chosen = b;
        }
        if (chosen < 0) chosen = last_any;
        acc = s_acc;
        for (int b = 255; b > chosen; --b) acc += mass[b];
      }
      s_acc = acc;
      s_prefix = prefix | static_cast<uint64_t>(chosen) << shift;
      s_done = cnt[chosen] <= 1u;
    }
    __syncthreads();
  }
  const uint64_t result = s_prefix;
  __syncthreads();  // the next call's thread 0 resets s_prefix
  return result;
}

// The smallest key >= at over S (see RadixFind): the token a RadixFind prefix
// points to.
__device__ __forceinline__ uint64_t MinKeyAtLeast(const SampleRow& row, uint64_t lo, bool id_order,
                                                  uint64_t at) {
  const float neg_inf = KvBitsToF32(0xFF800000u);
  uint64_t best = ~uint64_t{0};
  for (int32_t i = threadIdx.x; i < row.vocab; i += blockDim.x) {
    const float v = row.Value(i);
    if (v == neg_inf) continue;
    const uint64_t rank = RankKey(v, i);
    if (rank < lo) continue;
    const uint64_t key = id_order ? (0xFFFFFFFFu - static_cast<uint32_t>(i)) : rank;
    if (key >= at && key < best) best = key;
  }
  return BlockReduceAll(best, MinOp{}, ~uint64_t{0});
}

// Sum of weigh(v) over S.
__device__ __forceinline__ double SumWeights(const SampleRow& row, uint64_t lo,
                                             const SampleWeight& weigh) {
  const float neg_inf = KvBitsToF32(0xFF800000u);
  double s = 0.0;
  for (int32_t i = threadIdx.x; i < row.vocab; i += blockDim.x) {
    const float v = row.Value(i);
    if (v == neg_inf || RankKey(v, i) < lo) continue;
    s += weigh(v);
  }
  return BlockReduceAll(s, SumOp{}, 0.0);
}

}  // namespace strata::cuda
