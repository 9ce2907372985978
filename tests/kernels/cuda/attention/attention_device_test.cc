// The nvcc-built attention launchers on a real GPU against the CPU reference ops.
// Skips (with a message) on machines without a CUDA device. Tolerances as in the
// host tests: KV write codes and scales bit-exact (the device divides with IEEE
// x / scale and rounds with rintf, like the CPU); decode attention 1e-5 relative +
// 1e-5 absolute for every dtype, loosened to 2e-5 for the long contexts (device expf
// is within 2 ulp of libm, and more terms are summed in a different order).
#include <cuda_runtime_api.h>

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/attention/launchers.h"
#include "tests/kernels/cuda/attention/attention_test_util.h"

namespace strata::cuda {
namespace {

using testing::HostKvCache;
using testing::kAllKvDtypes;
using testing::kNaN;

using ::strata::cuda::testing::DeviceBuffer;

// A HostKvCache mirrored on the device (pools, scales, tables).
struct DeviceKvCache {
  explicit DeviceKvCache(const HostKvCache& h)
      : k(h.k), v(h.v), k_scale(h.k_scale), v_scale(h.v_scale), tables(h.tables), view(h.view) {
    view.k = k.ptr;
    view.v = v.ptr;
    view.k_scale = h.view.k_scale ? k_scale.ptr : nullptr;
    view.v_scale = h.view.v_scale ? v_scale.ptr : nullptr;
    view.block_tables = tables.ptr;
  }
  DeviceBuffer<uint64_t> k, v;
  DeviceBuffer<float> k_scale, v_scale;
  DeviceBuffer<int32_t> tables;
  PagedKvView view;
};

TEST(AttentionDevice, KvWriteEveryDtypeMatchesCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  for (KvDtype dtype : kAllKvDtypes) {
    for (int32_t head_dim : {64, 128, 25}) {
      SCOPED_TRACE(std::string(KvDtypeName(dtype)) + " head_dim " + std::to_string(head_dim));
      const int32_t n_kv = 3, n_seqs = 3, max_blocks = 4;
      const int64_t tokens = 11, stride = n_kv * head_dim + 1;
      std::vector<int32_t> seq = {0, 0, 1, 1, 1, 0, 2, 2, 1, 2, 0}, pos = {0, 63, 4, 5, 14, 17, 9, 3, 0, 40, 33};
      auto k = testing::RandomNonZero(tokens * stride, 41, 1e-6f, 70000.0f);
      auto v = testing::RandomNonZero(tokens * stride, 42);
      k[2 * stride + head_dim + 3] = kNaN;
      for (int d = 0; d < head_dim; ++d) v[4 * stride + d] = 0.0f;
      HostKvCache want(dtype, 16, 16, n_kv, head_dim);
      want.SetTables(n_seqs, max_blocks, 5);
      DeviceKvCache got(want);  // same poisoned start
      strata::KvWriteParams cp;
      cp.kv = want.view;
      cp.k = k.data();
      cp.v = v.data();
      cp.k_stride = cp.v_stride = stride;
      cp.tokens = tokens;
      cp.token_seq = seq.data();
      cp.positions = pos.data();
      ASSERT_TRUE(strata::LaunchKvWrite(cp).ok());

      DeviceBuffer<float> dk(k), dv(v);
      DeviceBuffer<int32_t> dseq(seq), dpos(pos), dbad(std::vector<int32_t>{0});
      KvWriteParams p{got.view, dk.ptr, dv.ptr, stride, stride, tokens, dseq.ptr, dpos.ptr, dbad.ptr};
      ASSERT_EQ(LaunchKvWrite(p, nullptr), cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(dbad.Read()[0], 0);
      testing::ExpectSameBits(got.k.Read(), want.k, "K codes");
      testing::ExpectSameBits(got.v.Read(), want.v, "V codes");
      testing::ExpectSameBits(got.k_scale.Read(), want.k_scale, "K scales");
      testing::ExpectSameBits(got.v_scale.Read(), want.v_scale, "V scales");
    }
  }
}

struct Case {
  KvDtype dtype;
  int32_t n_heads, n_kv_heads, head_dim, partition_tokens;
};

// Sequences of the given lengths, one decode token each at its last position plus
// two earlier positions of the first; block size 16.
void CheckAttention(const Case& c, const std::vector<int32_t>& lens, float tol) {
  SCOPED_TRACE(std::string(KvDtypeName(c.dtype)) + " heads " + std::to_string(c.n_heads) + "/" +
               std::to_string(c.n_kv_heads) + " head_dim " + std::to_string(c.head_dim) + " partition " +
               std::to_string(c.partition_tokens));
  const int32_t block_size = 16, n_seqs = static_cast<int32_t>(lens.size());
  int32_t max_len = 0;
  for (int32_t l : lens) max_len = std::max(max_len, l);
  const int32_t max_blocks = (max_len + block_size - 1) / block_size;
  HostKvCache cache(c.dtype, n_seqs * max_blocks + 2, block_size, c.n_kv_heads, c.head_dim);
  cache.SetTables(n_seqs, max_blocks, 17);
  std::vector<int32_t> fill_seq, fill_pos, seq, pos;
  for (int32_t s = 0; s < n_seqs; ++s) {
    for (int32_t p = 0; p < lens[s]; ++p) {
      fill_seq.push_back(s);
      fill_pos.push_back(p);
    }
    seq.push_back(s);
    pos.push_back(lens[s] - 1);
  }
  seq.push_back(0);
  pos.push_back(lens[0] / 2);
  seq.push_back(0);
  pos.push_back(0);
  const int64_t row = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  const auto kx = testing::RandomNonZero(fill_seq.size() * row, 1);
  const auto vx = testing::RandomNonZero(fill_seq.size() * row, 2);
  strata::KvWriteParams w;
  w.kv = cache.view;
  w.k = kx.data();
  w.v = vx.data();
  w.k_stride = w.v_stride = row;
  w.tokens = static_cast<int64_t>(fill_seq.size());
  w.token_seq = fill_seq.data();
  w.positions = fill_pos.data();
  ASSERT_TRUE(strata::LaunchKvWrite(w).ok());

  const int64_t tokens = static_cast<int64_t>(seq.size());
  const int64_t q_stride = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const auto q = testing::RandomNonZero(tokens * q_stride, 3);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> want(tokens * q_stride, kNaN);
  strata::PagedAttentionParams cp;
  cp.kv = cache.view;
  cp.q = q.data();
  cp.q_stride = q_stride;
  cp.out = want.data();
  cp.tokens = tokens;
  cp.n_heads = c.n_heads;
  cp.token_seq = seq.data();
  cp.positions = pos.data();
  cp.scale = scale;
  ASSERT_TRUE(strata::LaunchPagedAttention(cp).ok());

  DeviceKvCache dcache(cache);
  DeviceBuffer<float> dq(q), dout(std::vector<float>(want.size(), kNaN));
  DeviceBuffer<int32_t> dseq(seq), dpos(pos), dbad(std::vector<int32_t>{0});
  DecodeAttentionParams p;
  p.kv = dcache.view;
  p.q = dq.ptr;
  p.q_stride = q_stride;
  p.out = dout.ptr;
  p.tokens = tokens;
  p.n_heads = c.n_heads;
  p.token_seq = dseq.ptr;
  p.positions = dpos.ptr;
  p.scale = scale;
  p.max_context = max_len;
  p.partition_tokens = c.partition_tokens;
  DeviceBuffer<float> ws(std::vector<float>(DecodeAttentionWorkspaceBytes(p) / sizeof(float), kNaN));
  p.workspace = ws.ptr;
  p.bad_tokens = dbad.ptr;
  ASSERT_EQ(LaunchDecodeAttention(p, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(dbad.Read()[0], 0);
  testing::ExpectClose(dout.Read(), want, tol, tol, "out");
}

TEST(AttentionDevice, DecodeAttentionEveryDtypeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (KvDtype dtype : kAllKvDtypes) {
    for (int32_t head_dim : {64, 128}) {
      CheckAttention({dtype, 8, 2, head_dim, 64}, {37, 300, 5}, 1e-5f);
      CheckAttention({dtype, 2, 2, head_dim, 0}, {37, 300, 5}, 1e-5f);
    }
  }
}

TEST(AttentionDevice, DecodeAttentionLongContexts) {
  SKIP_WITHOUT_GPU();
  CheckAttention({KvDtype::kBF16, 32, 8, 128, 512}, {4099, 1000, 17}, 2e-5f);
  CheckAttention({KvDtype::kFp8E4M3, 32, 8, 128, 512}, {4099, 1000, 17}, 2e-5f);
  CheckAttention({KvDtype::kBF16, 32, 8, 128, 0}, {2051, 7}, 2e-5f);
  CheckAttention({KvDtype::kInt8, 12, 1, 64, 256}, {1500, 3}, 2e-5f);
}

TEST(AttentionDevice, DecodeAttentionBadBlockGivesNanAndCount) {
  SKIP_WITHOUT_GPU();
  for (int32_t partition : {0, 32}) {
    const int32_t head_dim = 64, n_kv = 2, n_heads = 4;
    HostKvCache cache(KvDtype::kBF16, 20, 16, n_kv, head_dim);
    cache.SetTables(2, 8, 3);
    std::vector<uint64_t> zero(cache.k.size(), 0);  // finite K/V everywhere
    cache.k = zero;
    cache.v = zero;
    cache.tables[3] = 0;  // sequence 0, positions 48..63: the null block
    DeviceKvCache dcache(cache);
    const std::vector<int32_t> seq = {0, 1, 0}, pos = {100, 100, 40};
    const auto q = testing::RandomNonZero(3 * n_heads * head_dim, 3);
    DeviceBuffer<float> dq(q), dout(std::vector<float>(q.size(), kNaN));
    DeviceBuffer<int32_t> dseq(seq), dpos(pos), dbad(std::vector<int32_t>{0});
    DecodeAttentionParams p;
    p.kv = dcache.view;
    p.q = dq.ptr;
    p.q_stride = n_heads * head_dim;
    p.out = dout.ptr;
    p.tokens = 3;
    p.n_heads = n_heads;
    p.token_seq = dseq.ptr;
    p.positions = dpos.ptr;
    p.max_context = 128;
    p.partition_tokens = partition;
    DeviceBuffer<float> ws(std::vector<float>(DecodeAttentionWorkspaceBytes(p) / sizeof(float) + 1, kNaN));
    p.workspace = ws.ptr;
    p.bad_tokens = dbad.ptr;
    ASSERT_EQ(LaunchDecodeAttention(p, nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(dbad.Read()[0], 1);
    const auto out = dout.Read();
    for (size_t i = 0; i < out.size(); ++i) {
      const bool first = i < static_cast<size_t>(n_heads * head_dim);
      ASSERT_EQ(std::isnan(out[i]), first) << "partition " << partition << " element " << i;
    }
  }
}

}  // namespace
}  // namespace strata::cuda
