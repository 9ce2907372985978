// Paged decode attention, run on the host harness, against the CPU reference
// strata::LaunchPagedAttention (scalar level) on the same KV cache (filled by the CPU
// LaunchKvWrite), so both sides decode the same stored values for every KvDtype.
// Tolerance, every dtype: 1e-5 relative + 1e-5 absolute on the f32 outputs (both
// accumulate in f32; they differ in summation order, the online-softmax rescaling,
// the split merge and, for fp8/int8, where the row scale is multiplied in).
// Outputs start as NaN, so an unwritten element fails.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/attention/host/host_ops.h"
#include "tests/kernels/cuda/attention/attention_test_util.h"

namespace strata::cuda {
namespace {

using testing::HostKvCache;
using testing::kAllKvDtypes;
using testing::kNaN;

struct Batch {
  std::vector<int32_t> seq, pos;  // query tokens
  std::vector<int32_t> lens;      // tokens stored per sequence
};

// Sequences of lengths 37, 100 and 5 (block size 16: none a multiple); one decode
// token each at its last position, plus two earlier positions of sequence 1 (a
// prefill-like mix) and position 0 of sequence 0.
Batch MixedBatch() { return Batch{{0, 1, 2, 1, 1, 0}, {36, 99, 4, 50, 16, 0}, {37, 100, 5}}; }

struct Case {
  KvDtype dtype;
  int32_t n_heads, n_kv_heads, head_dim, partition_tokens;
};

std::string Name(const Case& c) {
  return std::string(KvDtypeName(c.dtype)) + " heads " + std::to_string(c.n_heads) + "/" +
         std::to_string(c.n_kv_heads) + " head_dim " + std::to_string(c.head_dim) + " partition " +
         std::to_string(c.partition_tokens);
}

// Fills a cache with K/V rows for every stored position (CPU LaunchKvWrite).
void FillCache(HostKvCache& cache, const Batch& b, uint32_t seed) {
  const PagedKvView& kv = cache.view;
  std::vector<int32_t> seq, pos;
  for (size_t s = 0; s < b.lens.size(); ++s) {
    for (int32_t p = 0; p < b.lens[s]; ++p) {
      seq.push_back(static_cast<int32_t>(s));
      pos.push_back(p);
    }
  }
  const int64_t row = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
  const auto k = testing::RandomNonZero(seq.size() * row, seed);
  const auto v = testing::RandomNonZero(seq.size() * row, seed + 1);
  strata::KvWriteParams w;
  w.kv = kv;
  w.k = k.data();
  w.v = v.data();
  w.k_stride = w.v_stride = row;
  w.tokens = static_cast<int64_t>(seq.size());
  w.token_seq = seq.data();
  w.positions = pos.data();
  ASSERT_TRUE(strata::LaunchKvWrite(w).ok());
}

DecodeAttentionParams MakeParams(const Case& c, const PagedKvView& kv, const Batch& b, const std::vector<float>& q,
                                 int64_t q_stride, std::vector<float>& out, std::vector<float>& ws, int* bad) {
  DecodeAttentionParams p;
  p.kv = kv;
  p.q = q.data();
  p.q_stride = q_stride;
  p.tokens = static_cast<int64_t>(b.seq.size());
  p.n_heads = c.n_heads;
  p.token_seq = b.seq.data();
  p.positions = b.pos.data();
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.max_context = 0;
  for (int32_t len : b.lens) p.max_context = std::max(p.max_context, len);
  p.partition_tokens = c.partition_tokens;
  out.assign(p.tokens * c.n_heads * c.head_dim, kNaN);
  p.out = out.data();
  ws.assign(DecodeAttentionWorkspaceBytes(p) / sizeof(float) + 4, kNaN);
  p.workspace = ws.data();
  p.bad_tokens = bad;
  return p;
}

void CheckAttention(const Case& c, const Batch& b, int32_t block_size = 16) {
  SCOPED_TRACE(Name(c));
  const int32_t max_len = *std::max_element(b.lens.begin(), b.lens.end());
  const int32_t max_blocks = (max_len + block_size - 1) / block_size;
  const int32_t n_seqs = static_cast<int32_t>(b.lens.size());
  HostKvCache cache(c.dtype, n_seqs * max_blocks + 3, block_size, c.n_kv_heads, c.head_dim);
  cache.SetTables(n_seqs, max_blocks, 17);
  FillCache(cache, b, 100 + c.head_dim);
  const int64_t tokens = static_cast<int64_t>(b.seq.size());
  const int64_t q_stride = static_cast<int64_t>(c.n_heads) * c.head_dim + 5;
  const auto q = testing::RandomNonZero(tokens * q_stride, 7 + c.n_heads);

  std::vector<float> want(tokens * c.n_heads * c.head_dim, kNaN);
  strata::PagedAttentionParams cp;
  cp.kv = cache.view;
  cp.q = q.data();
  cp.q_stride = q_stride;
  cp.out = want.data();
  cp.tokens = tokens;
  cp.n_heads = c.n_heads;
  cp.token_seq = b.seq.data();
  cp.positions = b.pos.data();
  cp.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  ASSERT_TRUE(strata::LaunchPagedAttentionWithLevel(cp, SimdLevel::kScalar).ok());

  std::vector<float> got, ws;
  int bad = 0;
  const DecodeAttentionParams p = MakeParams(c, cache.view, b, q, q_stride, got, ws, &bad);
  if (c.partition_tokens > 0) {
    EXPECT_GT(DecodeAttentionPartitions(p), 1);
  }
  ASSERT_TRUE(HostRunDecodeAttention(p).ok());
  EXPECT_EQ(bad, 0);
  testing::ExpectClose(got, want, 1e-5f, 1e-5f, "out");
}

TEST(DecodeAttentionHost, EveryDtypeGqaSplitMatchesCpu) {
  for (KvDtype dtype : kAllKvDtypes) {
    for (int32_t head_dim : {64, 128}) {
      // GQA ratio 4 with a split into partitions of 32 (up to 4 per token, so the merge
      // runs), and ratio 1 without a split.
      CheckAttention({dtype, 8, 2, head_dim, 32}, MixedBatch());
      CheckAttention({dtype, 2, 2, head_dim, 0}, MixedBatch());
    }
  }
}

TEST(DecodeAttentionHost, SplitAndUnsplitAgreeAcrossShapes) {
  // Ratio 1 split, ratio 4 unsplit; a group of 3 (idle head slots) and of 12 (two head
  // chunks per KV head); a partition that is not a multiple of the block size.
  CheckAttention({KvDtype::kBF16, 2, 2, 64, 48}, MixedBatch());
  CheckAttention({KvDtype::kFp8E4M3, 8, 2, 128, 0}, MixedBatch());
  CheckAttention({KvDtype::kF16, 6, 2, 64, 40}, MixedBatch());
  CheckAttention({KvDtype::kInt8, 12, 1, 64, 0}, MixedBatch());
  CheckAttention({KvDtype::kF32, 4, 1, 8, 24}, MixedBatch(), 5);
  // 32 lanes per KV token (head_dim > 128), some idle: 8 heads per CTA, and 1.
  CheckAttention({KvDtype::kFp8E4M3Unscaled, 16, 2, 256, 64}, MixedBatch());
  CheckAttention({KvDtype::kF16, 3, 3, 160, 0}, MixedBatch());
}

TEST(DecodeAttentionHost, LongContextCrossesSoftmaxChunks) {
  // 600 positions: three online-softmax chunks of 256 in one CTA without a split, and
  // 2 partitions of 512 (the second of 88) with one.
  const Batch b{{0, 0}, {599, 300}, {600}};
  CheckAttention({KvDtype::kBF16, 4, 1, 64, 0}, b);
  CheckAttention({KvDtype::kFp8E4M3, 4, 1, 64, 512}, b);
}

TEST(DecodeAttentionHost, BadTokensGiveNanRowsAndAreCounted) {
  for (int32_t partition : {0, 32}) {
    SCOPED_TRACE("partition " + std::to_string(partition));
    const Case c{KvDtype::kBF16, 4, 2, 64, partition};
    const Batch b = MixedBatch();
    HostKvCache cache(c.dtype, 3 * 7 + 3, 16, c.n_kv_heads, c.head_dim);
    cache.SetTables(3, 7, 17);
    FillCache(cache, b, 3);
    // Sequence 1, table index 5 (positions 80..95) becomes a block id past the pool:
    // token 1 (pos 99) is bad, tokens 3 (pos 50) and 4 (pos 16) never read that block.
    cache.tables[1 * 7 + 5] = cache.view.num_blocks;
    Batch q_batch = b;
    q_batch.seq.push_back(3);  // sequence out of range
    q_batch.pos.push_back(0);
    q_batch.seq.push_back(2);  // position >= max_context
    q_batch.pos.push_back(100);
    const int64_t tokens = static_cast<int64_t>(q_batch.seq.size());
    const int64_t stride = c.n_heads * c.head_dim;
    const auto q = testing::RandomNonZero(tokens * stride, 4);
    std::vector<float> out, ws;
    int bad = 0;
    const DecodeAttentionParams p = MakeParams(c, cache.view, q_batch, q, stride, out, ws, &bad);
    ASSERT_TRUE(HostRunDecodeAttention(p).ok());
    EXPECT_EQ(bad, 3);
    for (int64_t t = 0; t < tokens; ++t) {
      const bool want_nan = t == 1 || t >= 6;
      for (int64_t i = 0; i < stride; ++i) {
        ASSERT_EQ(std::isnan(out[t * stride + i]), want_nan) << "token " << t << " element " << i;
      }
    }
  }
}

TEST(DecodeAttentionHost, RefusesBadParams) {
  const Case c{KvDtype::kF16, 4, 2, 64, 32};
  const Batch b = MixedBatch();
  HostKvCache cache(c.dtype, 24, 16, c.n_kv_heads, c.head_dim);
  cache.SetTables(3, 7, 1);
  const auto q = testing::RandomNonZero(6 * 256, 4);
  std::vector<float> out, ws;
  DecodeAttentionParams p = MakeParams(c, cache.view, b, q, 256, out, ws, nullptr);
  ASSERT_TRUE(HostRunDecodeAttention(p).ok());
  DecodeAttentionParams bad = p;
  bad.workspace = nullptr;  // split without a workspace
  EXPECT_FALSE(HostRunDecodeAttention(bad).ok());
  bad = p;
  bad.n_heads = 5;  // not a multiple of n_kv_heads
  EXPECT_FALSE(HostRunDecodeAttention(bad).ok());
  bad = p;
  bad.kv.head_dim = 60;  // not a multiple of 8
  EXPECT_FALSE(HostRunDecodeAttention(bad).ok());
  bad = p;
  bad.max_context = 0;
  EXPECT_FALSE(HostRunDecodeAttention(bad).ok());
  bad = p;
  bad.tokens = 0;  // empty: nothing to do
  EXPECT_TRUE(HostRunDecodeAttention(bad).ok());
}

}  // namespace
}  // namespace strata::cuda
