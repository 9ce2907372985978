// A random variable-length prefill batch over a paged KV cache, shared by the host
// harness and the device tests: K/V of every position (cached prefix + chunk) are
// written by the CPU reference LaunchKvWrite, the expected output comes from the CPU
// reference LaunchPagedAttention (independent of the CUDA code).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/prefill/prefill_plan.h"

namespace strata::cuda::prefill_test {

struct SeqSpec {
  int32_t prefix;  // cached positions before the chunk
  int32_t rows;    // query tokens in this batch (0: the sequence is not scheduled)
};

struct Case {
  KvDtype dtype = KvDtype::kBF16;
  int32_t head_dim = 64;
  int32_t n_kv_heads = 2;
  int32_t group = 1;
  int32_t block_size = 16;
  std::vector<SeqSpec> seqs;
  uint32_t seed = 1;
};

inline std::vector<float> RandomNonZero(size_t n, uint32_t seed, float lo = 0.05f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

// Host buffers of one case; `kv` points into them.
struct Batch {
  int32_t n_heads = 0, head_dim = 0;
  int64_t tokens = 0;
  std::vector<int32_t> token_seq, positions, tables;
  std::vector<uint8_t> k_pool, v_pool;  // raw dtype bytes
  std::vector<float> k_scale, v_scale;
  std::vector<float> q, want;
  PagedKvView kv;
  PrefillPlan plan;
};

// Fills *b (ASSERTs inside: call through ASSERT_NO_FATAL_FAILURE).
inline void MakeBatch(const Case& c, Batch* b) {
  const int32_t n_seqs = static_cast<int32_t>(c.seqs.size());
  int32_t max_len = 1;
  for (const SeqSpec& s : c.seqs) max_len = std::max(max_len, s.prefix + s.rows);
  const int32_t max_blocks = (max_len + c.block_size - 1) / c.block_size;
  const int32_t num_blocks = n_seqs * max_blocks + 3;
  // Distinct shuffled block ids 1.. so sequences interleave in the pool.
  std::vector<int32_t> ids(num_blocks - 1);
  std::iota(ids.begin(), ids.end(), 1);
  std::mt19937 rng(c.seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  b->tables.assign(static_cast<size_t>(n_seqs) * max_blocks, 0);
  for (size_t i = 0; i < b->tables.size(); ++i) b->tables[i] = ids[i];

  b->head_dim = c.head_dim;
  b->n_heads = c.n_kv_heads * c.group;
  KvPoolBytes bytes;
  ASSERT_TRUE(ComputeKvPoolBytes(c.dtype, num_blocks, c.n_kv_heads, c.block_size, c.head_dim, &bytes));
  b->k_pool.assign(bytes.data + 16, 0xCD);
  b->v_pool.assign(bytes.data + 16, 0xCD);
  b->k_scale.assign(bytes.scales / 4, std::numeric_limits<float>::quiet_NaN());
  b->v_scale.assign(bytes.scales / 4, std::numeric_limits<float>::quiet_NaN());
  PagedKvView& kv = b->kv;
  kv.k = b->k_pool.data();
  kv.v = b->v_pool.data();
  kv.k_scale = bytes.scales ? b->k_scale.data() : nullptr;
  kv.v_scale = bytes.scales ? b->v_scale.data() : nullptr;
  kv.dtype = c.dtype;
  kv.num_blocks = num_blocks;
  kv.block_size = c.block_size;
  kv.n_kv_heads = c.n_kv_heads;
  kv.head_dim = c.head_dim;
  kv.block_tables = b->tables.data();
  kv.max_blocks_per_seq = max_blocks;
  kv.n_seqs = n_seqs;

  // K/V of every position of every sequence (the cached prefix and the chunk).
  std::vector<int32_t> w_seq, w_pos;
  for (int32_t s = 0; s < n_seqs; ++s) {
    for (int32_t p = 0; p < c.seqs[s].prefix + c.seqs[s].rows; ++p) {
      w_seq.push_back(s);
      w_pos.push_back(p);
    }
  }
  const int64_t kv_row = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  const auto k = RandomNonZero(w_seq.size() * kv_row, c.seed + 1);
  const auto v = RandomNonZero(w_seq.size() * kv_row, c.seed + 2);
  KvWriteParams wp;
  wp.kv = kv;
  wp.k = k.data();
  wp.v = v.data();
  wp.k_stride = wp.v_stride = kv_row;
  wp.tokens = static_cast<int64_t>(w_seq.size());
  wp.token_seq = w_seq.data();
  wp.positions = w_pos.data();
  ASSERT_TRUE(LaunchKvWrite(wp).ok());

  // The batch: each scheduled sequence's chunk, contiguous, in sequence order.
  for (int32_t s = 0; s < n_seqs; ++s) {
    for (int32_t r = 0; r < c.seqs[s].rows; ++r) {
      b->token_seq.push_back(s);
      b->positions.push_back(c.seqs[s].prefix + r);
    }
  }
  b->tokens = static_cast<int64_t>(b->token_seq.size());
  const int64_t q_row = static_cast<int64_t>(b->n_heads) * c.head_dim;
  b->q = RandomNonZero(b->tokens * q_row, c.seed + 3);
  b->want.assign(b->tokens * q_row, std::numeric_limits<float>::quiet_NaN());
  PagedAttentionParams ap;
  ap.kv = kv;
  ap.q = b->q.data();
  ap.q_stride = q_row;
  ap.out = b->want.data();
  ap.tokens = b->tokens;
  ap.n_heads = b->n_heads;
  ap.token_seq = b->token_seq.data();
  ap.positions = b->positions.data();
  ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  ASSERT_TRUE(LaunchPagedAttention(ap).ok());

  const char* why = BuildPrefillPlan(b->token_seq.data(), b->positions.data(), b->tokens, n_seqs, b->n_heads,
                                     c.n_kv_heads, &b->plan);
  ASSERT_EQ(why, nullptr) << why;
}

// Params with every pointer into *b (the host harness), out = `out`.
inline PrefillAttentionParams HostParams(Batch* b, float* out) {
  PrefillAttentionParams p;
  p.kv = b->kv;
  p.q = b->q.data();
  p.q_stride = static_cast<int64_t>(b->n_heads) * b->head_dim;
  p.out = out;
  p.out_stride = p.q_stride;
  p.n_heads = b->n_heads;
  p.scale = 1.0f / std::sqrt(static_cast<float>(b->head_dim));
  p.q_start = b->plan.q_start.data();
  p.q_pos0 = b->plan.q_pos0.data();
  p.tile_start = b->plan.tile_start.data();
  p.n_tiles = b->plan.n_tiles;
  p.plan_group = b->plan.group;
  return p;
}

// |got - want| <= abs + rel * |want| everywhere, and every element written (finite).
// Returns the largest absolute error seen.
inline float ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel, float abs) {
  EXPECT_EQ(got.size(), want.size());
  int bad = 0;
  float worst = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const float err = std::fabs(got[i] - want[i]);
    if (std::isfinite(err)) worst = std::max(worst, err);
    if (!(std::isfinite(got[i]) && err <= abs + rel * std::fabs(want[i])) && ++bad <= 5) {
      ADD_FAILURE() << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0);
  return worst;
}

}  // namespace strata::cuda::prefill_test
