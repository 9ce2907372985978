// Paged attention and KV write against a direct double-precision attention
// over contiguous K/V (the CPU reference), with shuffled block ids, GQA,
// sequences at different positions, and both KV dtypes.
#include "kernels/cpu/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/float16.h"

namespace strata {
namespace {

struct Case {
  int n_heads = 6;
  int n_kv_heads = 2;
  int head_dim = 32;
  int block_size = 4;
  std::vector<int> seq_lens = {1, 7, 13};
  KvDtype dtype = KvDtype::kF32;
};

void RunCase(const Case& c, float tol) {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n_seqs = static_cast<int>(c.seq_lens.size());
  const int max_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  const int max_blocks = (max_len + c.block_size - 1) / c.block_size;
  const int num_blocks = 1 + n_seqs * max_blocks + 3;
  // Shuffled block ids so tables are not contiguous.
  std::vector<int32_t> ids(num_blocks - 1);
  std::iota(ids.begin(), ids.end(), 1);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(n_seqs * max_blocks);
  for (int i = 0; i < n_seqs * max_blocks; ++i) tables[i] = ids[i];

  const int kv_dim = c.n_kv_heads * c.head_dim;
  const int q_dim = c.n_heads * c.head_dim;
  // All tokens of all sequences in one batch (a prefill of everything).
  std::vector<int32_t> token_seq, positions;
  for (int s = 0; s < n_seqs; ++s) {
    for (int p = 0; p < c.seq_lens[s]; ++p) {
      token_seq.push_back(s);
      positions.push_back(p);
    }
  }
  const int T = static_cast<int>(token_seq.size());
  std::vector<float> q(T * q_dim), k(T * kv_dim), v(T * kv_dim);
  for (auto* vec : {&q, &k, &v}) for (float& x : *vec) x = nd(rng);

  const size_t pool_elems = static_cast<size_t>(num_blocks) * kv_dim * c.block_size;
  std::vector<uint8_t> kpool(pool_elems * KvDtypeBytes(c.dtype)), vpool(kpool.size());
  PagedKvView view;
  view.k = kpool.data();
  view.v = vpool.data();
  view.dtype = c.dtype;
  view.num_blocks = num_blocks;
  view.block_size = c.block_size;
  view.n_kv_heads = c.n_kv_heads;
  view.head_dim = c.head_dim;
  view.block_tables = tables.data();
  view.max_blocks_per_seq = max_blocks;
  view.n_seqs = n_seqs;

  KvWriteParams wp;
  wp.kv = view;
  wp.k = k.data();
  wp.v = v.data();
  wp.k_stride = kv_dim;
  wp.v_stride = kv_dim;
  wp.tokens = T;
  wp.token_seq = token_seq.data();
  wp.positions = positions.data();
  ASSERT_TRUE(LaunchKvWrite(wp).ok());

  auto pool = ThreadPool::Create(2).value();
  std::vector<float> out(T * q_dim, std::numeric_limits<float>::quiet_NaN());
  PagedAttentionParams ap;
  ap.kv = view;
  ap.q = q.data();
  ap.q_stride = q_dim;
  ap.out = out.data();
  ap.tokens = T;
  ap.n_heads = c.n_heads;
  ap.token_seq = token_seq.data();
  ap.positions = positions.data();
  ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  ap.pool = pool.get();
  ASSERT_TRUE(LaunchPagedAttention(ap).ok());

  // Reference: contiguous causal attention per sequence in double, reading K/V
  // as stored (rounded to f16 when the cache is f16).
  auto stored = [&](float x) {
    return c.dtype == KvDtype::kF16 ? static_cast<double>(F16ToF32(F32ToF16(x))) : x;
  };
  const int group = c.n_heads / c.n_kv_heads;
  int base = 0;
  for (int s = 0; s < n_seqs; ++s) {
    for (int i = 0; i < c.seq_lens[s]; ++i) {
      const int t = base + i;
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h / group;
        std::vector<double> sc(i + 1);
        double mx = -1e300;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int d = 0; d < c.head_dim; ++d) {
            dot += static_cast<double>(q[t * q_dim + h * c.head_dim + d]) *
                   stored(k[(base + j) * kv_dim + kvh * c.head_dim + d]);
          }
          sc[j] = dot / std::sqrt(static_cast<double>(c.head_dim));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int d = 0; d < c.head_dim; ++d) {
          double acc = 0;
          for (int j = 0; j <= i; ++j) acc += sc[j] / sum * stored(v[(base + j) * kv_dim + kvh * c.head_dim + d]);
          EXPECT_NEAR(out[t * q_dim + h * c.head_dim + d], acc, tol)
              << "seq " << s << " pos " << i << " head " << h << " dim " << d;
        }
      }
    }
    base += c.seq_lens[s];
  }
}

TEST(PagedAttention, MatchesContiguousReferenceF32) { RunCase(Case{}, 1e-5f); }

TEST(PagedAttention, MatchesContiguousReferenceF16Cache) {
  Case c;
  c.dtype = KvDtype::kF16;
  RunCase(c, 1e-5f);  // the reference reads the same f16-rounded values
}

TEST(PagedAttention, MultiQueryAndOddBlockSize) {
  Case c;
  c.n_heads = 4;
  c.n_kv_heads = 1;
  c.block_size = 5;
  c.seq_lens = {31, 2};
  RunCase(c, 1e-5f);
}

// Block size 16: runs of 8 positions inside a block take the 8-row score
// path; head dims 64 and 128 the register-resident V slices.
TEST(PagedAttention, LongSequencesLargeBlocks) {
  for (int hd : {64, 128, 24}) {
    for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
      Case c;
      c.n_heads = 9;
      c.n_kv_heads = 3;
      c.head_dim = hd;
      c.block_size = 16;
      c.seq_lens = {1, 9, 40, 130};
      c.dtype = dtype;
      RunCase(c, 2e-5f);
    }
  }
}

TEST(PagedAttention, HeadDimNotMultipleOfEight) {
  Case c;
  c.head_dim = 20;  // takes the scalar body on every CPU
  c.dtype = KvDtype::kF16;
  RunCase(c, 1e-5f);
}

TEST(PagedAttention, RejectsOutOfRangeBlockAndPosition) {
  std::vector<float> pool(2 * 2 * 4 * 8);
  std::vector<int32_t> table = {1, 7};  // block 7 does not exist
  PagedKvView view;
  view.k = pool.data();
  view.v = pool.data();
  view.dtype = KvDtype::kF32;
  view.num_blocks = 2;
  view.block_size = 4;
  view.n_kv_heads = 1;
  view.head_dim = 8;
  view.block_tables = table.data();
  view.max_blocks_per_seq = 2;
  view.n_seqs = 1;
  std::vector<float> q(8), out(8);
  int32_t seq = 0, pos = 5;
  PagedAttentionParams ap;
  ap.kv = view;
  ap.q = q.data();
  ap.q_stride = 8;
  ap.out = out.data();
  ap.tokens = 1;
  ap.n_heads = 1;
  ap.token_seq = &seq;
  ap.positions = &pos;
  absl::Status st = LaunchPagedAttention(ap);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("block id 7"), absl::string_view::npos) << st;
  pos = 8;  // beyond the 2-block table
  st = LaunchPagedAttention(ap);
  EXPECT_NE(st.message().find("outside the block table"), absl::string_view::npos) << st;
  seq = 3;
  pos = 0;
  EXPECT_FALSE(LaunchPagedAttention(ap).ok());
}

}  // namespace
}  // namespace strata
