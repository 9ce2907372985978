// Shared helpers of the attention kernel tests: random inputs, a paged KV cache of
// any KvDtype in host memory (poisoned), filled by the CPU reference LaunchKvWrite.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/paged_kv_view.h"

namespace strata::cuda::testing {

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline constexpr KvDtype kAllKvDtypes[] = {KvDtype::kF32,     KvDtype::kF16,  KvDtype::kBF16,
                                           KvDtype::kFp8E4M3, KvDtype::kInt8, KvDtype::kFp8E4M3Unscaled};

inline std::vector<float> RandomNonZero(size_t n, uint32_t seed, float lo = 0.05f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

// Data and scale pools of one layer (K and V), poisoned: data bytes 0x7F (a NaN in
// every float dtype and FP8, 127 in INT8), scales NaN.
struct HostKvCache {
  HostKvCache(KvDtype dtype, int32_t num_blocks, int32_t block_size, int32_t n_kv_heads, int32_t head_dim) {
    KvPoolBytes bytes;
    EXPECT_TRUE(ComputeKvPoolBytes(dtype, num_blocks, n_kv_heads, block_size, head_dim, &bytes));
    // uint64_t storage keeps the pools 16-byte aligned (malloc) and 8-byte granular.
    k.assign((bytes.data + 7) / 8, 0x7F7F7F7F7F7F7F7Full);
    v = k;
    k_scale.assign(bytes.scales / 4, kNaN);
    v_scale = k_scale;
    view.k = k.data();
    view.v = v.data();
    view.k_scale = k_scale.empty() ? nullptr : k_scale.data();
    view.v_scale = v_scale.empty() ? nullptr : v_scale.data();
    view.dtype = dtype;
    view.num_blocks = num_blocks;
    view.block_size = block_size;
    view.n_kv_heads = n_kv_heads;
    view.head_dim = head_dim;
  }
  // Block tables: sequence s owns max_blocks blocks, a shuffled choice of [1, num_blocks).
  void SetTables(int32_t n_seqs, int32_t max_blocks, uint32_t seed) {
    std::vector<int32_t> ids(view.num_blocks - 1);
    std::iota(ids.begin(), ids.end(), 1);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    EXPECT_LE(static_cast<size_t>(n_seqs) * max_blocks, ids.size());
    tables.assign(ids.begin(), ids.begin() + static_cast<size_t>(n_seqs) * max_blocks);
    view.block_tables = tables.data();
    view.max_blocks_per_seq = max_blocks;
    view.n_seqs = n_seqs;
  }
  std::vector<uint64_t> k, v;
  std::vector<float> k_scale, v_scale;
  std::vector<int32_t> tables;
  PagedKvView view;
};

// Bitwise equality of two buffers (NaN payloads included); names the first bytes off.
template <typename T>
void ExpectSameBits(const std::vector<T>& got, const std::vector<T>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  const auto* g = reinterpret_cast<const uint8_t*>(got.data());
  const auto* w = reinterpret_cast<const uint8_t*>(want.data());
  const size_t n = got.size() * sizeof(T);
  int bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (g[i] != w[i] && ++bad <= 5) {
      ADD_FAILURE() << what << ": byte " << i << " = 0x" << std::hex << int{g[i]} << ", want 0x" << int{w[i]};
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

inline void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel, float abs,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isfinite(got[i]) && std::fabs(got[i] - want[i]) <= abs + rel * std::fabs(want[i]);
    if (!ok && ++bad <= 5) ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
  }
  EXPECT_EQ(bad, 0) << what;
}

}  // namespace strata::cuda::testing
