// The KV-cache write for every KvDtype, run on the host harness, against the CPU
// reference strata::LaunchKvWrite. Tolerance: none; codes AND row scales must be
// bit-identical (both sides use the same f32 arithmetic: amax, amax / 448 or / 127,
// x / scale, round to nearest even). Pools start poisoned (0x7F bytes, NaN scales)
// on both sides, so a slot written by one side only shows up as a byte difference.
//
// Also here: the branch-free decodes of kv_codec.cuh against the exact ones for every
// code, and the f32 -> f16 encode against the CPU F32ToF16.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/attention/decode_attention_kernel.cuh"
#include "kernels/cuda/attention/host/host_ops.h"
#include "kernels/cuda/attention/kv_codec.cuh"
#include "tests/kernels/cuda/attention/attention_test_util.h"

namespace strata::cuda {
namespace {

using testing::HostKvCache;
using testing::kAllKvDtypes;
using testing::kNaN;

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

TEST(KvCodec, FastF16DecodeMatchesExactForEveryCode) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float want = KvF16ToF32(static_cast<uint16_t>(h));
    const float got = KvF16ToF32Fast(h);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(Bits(got), Bits(want)) << h;
    }
    ASSERT_EQ(Bits(want), Bits(strata::F16ToF32(static_cast<uint16_t>(h)))) << h;
  }
}

TEST(KvCodec, FastE4M3DecodeMatchesExactForEveryCode) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float want = strata::E4M3ToF32(static_cast<uint8_t>(c));
    const float got = KvE4M3ToF32Fast(c);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << c;
    } else {
      ASSERT_EQ(Bits(got), Bits(want)) << c;
    }
  }
}

// The attention loads' 8-element decode (fast path plus the NaN fix-up for fp8)
// against the exact per-element decode, on random words with NaN codes mixed in.
template <KvDtype kDtype>
void CheckDecode8() {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 20000; ++trial) {
    KvRaw8<kDtype> r;
    for (uint32_t& w : r.w) w = rng();
    if (trial % 3 == 0) r.w[0] = (r.w[0] & 0xFFFF00FFu) | ((trial % 2 ? 0x7Fu : 0xFFu) << 8);
    float x[8];
    KvDecode8<kDtype>(r, x);
    for (int e = 0; e < 8; ++e) {
      const float want = KvLoadElement(r.w, kDtype, e);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(x[e])) << KvDtypeName(kDtype) << " trial " << trial << " e " << e;
      } else {
        ASSERT_EQ(Bits(x[e]), Bits(want)) << KvDtypeName(kDtype) << " trial " << trial << " e " << e;
      }
    }
  }
}

TEST(KvCodec, Decode8MatchesExactForEveryDtype) {
  CheckDecode8<KvDtype::kF32>();
  CheckDecode8<KvDtype::kF16>();
  CheckDecode8<KvDtype::kBF16>();
  CheckDecode8<KvDtype::kFp8E4M3>();
  CheckDecode8<KvDtype::kFp8E4M3Unscaled>();
  CheckDecode8<KvDtype::kInt8>();
}

TEST(KvCodec, F16EncodeMatchesCpu) {
  std::mt19937 rng(7);
  std::vector<float> xs = {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 65536.0f, 1e-8f, 2.98e-8f, 6.1e-5f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), kNaN};
  for (int i = 0; i < 200000; ++i) {
    const uint32_t b = rng();
    float f;
    std::memcpy(&f, &b, sizeof(f));
    xs.push_back(f);
  }
  for (float x : xs) ASSERT_EQ(KvF32ToF16(x), strata::F32ToF16(x)) << x;
}

struct WriteCase {
  int32_t head_dim;
  KvDtype dtype;
};

// Runs the CPU op and the harness kernel on identical poisoned caches; compares bits.
void CheckKvWrite(KvDtype dtype, int32_t head_dim) {
  SCOPED_TRACE(std::string(KvDtypeName(dtype)) + " head_dim " + std::to_string(head_dim));
  const int32_t num_blocks = 11, block_size = 5, n_kv = 3, max_blocks = 3, n_seqs = 3;
  const int64_t tokens = 9, row = n_kv * head_dim, stride = row + 3;
  std::vector<int32_t> seq = {0, 0, 1, 1, 1, 0, 2, 2, 1}, pos = {0, 6, 4, 5, 14, 11, 9, 3, 0};
  // Magnitudes from 1e-6 (f16/fp8 subnormal range) to 7e4 (f16 overflow, fp8 saturation).
  auto k = testing::RandomNonZero(tokens * stride, 41 + head_dim, 1e-6f, 70000.0f);
  auto v = testing::RandomNonZero(tokens * stride, 42 + head_dim);
  // Token 2, K head 1: one NaN; token 3, V head 2: one inf; token 4: K head 0 and V head 1
  // all zero; token 7, V head 0: tiny values only.
  k[2 * stride + 1 * head_dim + head_dim / 2] = kNaN;
  v[3 * stride + 2 * head_dim + 1] = std::numeric_limits<float>::infinity();
  for (int d = 0; d < head_dim; ++d) {
    k[4 * stride + d] = 0.0f;
    v[4 * stride + head_dim + d] = (d % 2) ? -0.0f : 0.0f;
    v[7 * stride + d] = 1e-30f * static_cast<float>(d + 1);
  }
  HostKvCache want(dtype, num_blocks, block_size, n_kv, head_dim), got(dtype, num_blocks, block_size, n_kv, head_dim);
  want.SetTables(n_seqs, max_blocks, 5);
  got.SetTables(n_seqs, max_blocks, 5);

  strata::KvWriteParams cp;
  cp.kv = want.view;
  cp.k = k.data();
  cp.v = v.data();
  cp.k_stride = cp.v_stride = stride;
  cp.tokens = tokens;
  cp.token_seq = seq.data();
  cp.positions = pos.data();
  ASSERT_TRUE(strata::LaunchKvWrite(cp).ok());

  int bad = 0;
  KvWriteParams p{got.view, k.data(), v.data(), stride, stride, tokens, seq.data(), pos.data(), &bad};
  ASSERT_TRUE(HostRunKvWrite(p).ok());
  EXPECT_EQ(bad, 0);
  testing::ExpectSameBits(got.k, want.k, "K codes");
  testing::ExpectSameBits(got.v, want.v, "V codes");
  testing::ExpectSameBits(got.k_scale, want.k_scale, "K scales");
  testing::ExpectSameBits(got.v_scale, want.v_scale, "V scales");
}

TEST(KvWriteHost, EveryDtypeMatchesCpuBitForBit) {
  for (KvDtype dtype : kAllKvDtypes) {
    for (int32_t head_dim : {64, 80, 25}) CheckKvWrite(dtype, head_dim);
  }
}

TEST(KvWriteHost, BadTokensAreCountedAndWriteNothing) {
  for (KvDtype dtype : {KvDtype::kFp8E4M3, KvDtype::kBF16}) {
    const int32_t head_dim = 16, n_kv = 2;
    HostKvCache cache(dtype, 7, 4, n_kv, head_dim);
    cache.SetTables(2, 2, 3);
    const auto k0 = cache.k;
    const auto ks0 = cache.k_scale;
    cache.tables[1] = 0;  // seq 0, block index 1: the null block
    // token 0: seq 0 pos 5 -> null block; token 1: seq 2 (out of range); token 2: pos 8
    // (past the table); token 3: negative position.
    std::vector<int32_t> seq = {0, 2, 1, 1}, pos = {5, 0, 8, -1};
    const auto x = testing::RandomNonZero(4 * n_kv * head_dim, 9);
    int bad = 0;
    KvWriteParams p{cache.view, x.data(), x.data(), n_kv * head_dim, n_kv * head_dim, 4, seq.data(), pos.data(), &bad};
    ASSERT_TRUE(HostRunKvWrite(p).ok());
    EXPECT_EQ(bad, 4);
    testing::ExpectSameBits(cache.k, k0, "K untouched");
    testing::ExpectSameBits(cache.k_scale, ks0, "K scales untouched");
    // Bad params are refused before launching.
    p.kv.k_scale = nullptr;
    if (KvDtypeHasScales(dtype)) {
      EXPECT_FALSE(HostRunKvWrite(p).ok());
    }
    p = KvWriteParams{cache.view, x.data(), x.data(), n_kv * head_dim - 1, n_kv * head_dim, 4, seq.data(), pos.data(), &bad};
    EXPECT_FALSE(HostRunKvWrite(p).ok());
  }
}

}  // namespace
}  // namespace strata::cuda
