// The KV cache's memory for every dtype (sizes, scale pools, views), and the
// engine generating on the real default model with each KV dtype.
#include "worker/kv_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "worker/engine.h"

namespace strata {
namespace {

KvCacheConfig SmolShape(KvDtype dtype) {
  KvCacheConfig c;  // SmolLM2-135M: 30 layers, 3 KV heads of 64
  c.n_layers = 30;
  c.n_kv_heads = 3;
  c.head_dim = 64;
  c.block_size = 16;
  c.dtype = dtype;
  return c;
}

TEST(KvCache, BytesPerBlockCountsScales) {
  const int64_t per_row_f16 = 64 * 2, per_row_q = 64 + 4;  // one (token, KV head) row
  const int64_t rows = 2 * 30 * 3 * 16;                     // K and V, layers, heads, slots
  EXPECT_EQ(KvCache::BytesPerBlock(SmolShape(KvDtype::kF16)), rows * per_row_f16);
  EXPECT_EQ(KvCache::BytesPerBlock(SmolShape(KvDtype::kBF16)), rows * per_row_f16);  // same bytes as f16
  EXPECT_EQ(KvCache::BytesPerBlock(SmolShape(KvDtype::kF32)), rows * 64 * 4);
  EXPECT_EQ(KvCache::BytesPerBlock(SmolShape(KvDtype::kFp8E4M3)), rows * per_row_q);
  EXPECT_EQ(KvCache::BytesPerBlock(SmolShape(KvDtype::kInt8)), rows * per_row_q);
  // A byte budget (as --kv-cache-mb) holds 128/68 = 1.88x the f16 blocks.
  const int64_t budget = int64_t{256} << 20;
  const double ratio = static_cast<double>(budget / KvCache::BytesPerBlock(SmolShape(KvDtype::kInt8))) /
                       static_cast<double>(budget / KvCache::BytesPerBlock(SmolShape(KvDtype::kF16)));
  EXPECT_NEAR(ratio, 128.0 / 68.0, 0.01);
  // fp8-unscaled: no scales, exactly half of f16 per block, so a budget
  // holds exactly 2x the f16 blocks (BytesPerBlock(f16) divides 256 MiB here).
  const int64_t fp8u = KvCache::BytesPerBlock(SmolShape(KvDtype::kFp8E4M3Unscaled));
  EXPECT_EQ(fp8u, rows * 64);
  EXPECT_EQ(2 * fp8u, KvCache::BytesPerBlock(SmolShape(KvDtype::kF16)));
  EXPECT_EQ(budget / fp8u, 2 * (budget / KvCache::BytesPerBlock(SmolShape(KvDtype::kF16))));
}

TEST(KvCache, ViewsOfEveryDtypeAreDisjointAndAligned) {
  for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kBF16, KvDtype::kFp8E4M3, KvDtype::kInt8,
                        KvDtype::kFp8E4M3Unscaled}) {
    SCOPED_TRACE(KvDtypeName(dtype));
    KvCacheConfig c = SmolShape(dtype);
    c.n_layers = 3;
    c.head_dim = 20;  // element pools not a multiple of 64 bytes
    c.num_blocks = 5;
    auto cache = KvCache::Create(c);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_GE((*cache)->total_bytes(), KvCache::BytesPerBlock(c) * c.num_blocks);
    EXPECT_LT((*cache)->total_bytes(), KvCache::BytesPerBlock(c) * c.num_blocks + 4 * 64 * c.n_layers);
    // Mark every byte of every region through the views; no region overlaps another.
    std::vector<std::pair<uint8_t*, int64_t>> regions;
    KvPoolBytes pb;
    ASSERT_TRUE(ComputeKvPoolBytes(dtype, c.num_blocks, c.n_kv_heads, c.block_size, c.head_dim, &pb));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const PagedKvView v = (*cache)->LayerView(l, nullptr, 1, 1);
      EXPECT_EQ(v.dtype, dtype);
      regions.push_back({static_cast<uint8_t*>(v.k), pb.data});
      regions.push_back({static_cast<uint8_t*>(v.v), pb.data});
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.k) % 64, 0u);
      if (KvDtypeHasScales(dtype)) {
        ASSERT_NE(v.k_scale, nullptr);
        ASSERT_NE(v.v_scale, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(v.k_scale) % 64, 0u);
        regions.push_back({reinterpret_cast<uint8_t*>(v.k_scale), pb.scales});
        regions.push_back({reinterpret_cast<uint8_t*>(v.v_scale), pb.scales});
      } else {
        EXPECT_EQ(v.k_scale, nullptr);
        EXPECT_EQ(v.v_scale, nullptr);
      }
    }
    for (size_t i = 0; i < regions.size(); ++i) {
      for (int64_t b = 0; b < regions[i].second; ++b) {
        ASSERT_EQ(regions[i].first[b], 0) << "region " << i << " byte " << b << " already written";
        regions[i].first[b] = static_cast<uint8_t>(i + 1);
      }
    }
  }
}

TEST(KvCache, RejectsBadConfigs) {
  KvCacheConfig c = SmolShape(KvDtype::kInt8);
  c.num_blocks = 1;
  EXPECT_FALSE(KvCache::Create(c).ok());
  c.num_blocks = 4;
  c.dtype = static_cast<KvDtype>(7);
  EXPECT_FALSE(KvCache::Create(c).ok());
  EXPECT_EQ(KvCache::BytesPerBlock(c), 0);
  c.dtype = KvDtype::kFp8E4M3;
  c.num_blocks = 1 << 30;
  c.n_layers = int64_t{1} << 40;
  EXPECT_FALSE(KvCache::Create(c).ok());
}

// Generation with each KV dtype on the default model: runs, batched equals
// sequential (batch invariance through the quantised cache), and the greedy
// continuation of a factual prompt starts like the f16 cache's.
TEST(KvCacheEngine, GeneratesWithEveryDtype) {
  const std::string path = STRATA_DEFAULT_MODEL;
  if (!std::ifstream(path).good()) {
    if (std::getenv("CI")) ADD_FAILURE() << "default model missing at " << path;
    GTEST_SKIP() << "default model not installed (scripts/install_deps.sh)";
  }
  std::vector<int32_t> f16_tokens;
  for (KvDtype dtype : {KvDtype::kF16, KvDtype::kF32, KvDtype::kBF16, KvDtype::kFp8E4M3, KvDtype::kInt8,
                        KvDtype::kFp8E4M3Unscaled}) {
    SCOPED_TRACE(KvDtypeName(dtype));
    EngineConfig c;
    c.model_path = path;
    c.threads = 2;
    c.max_context = 128;
    c.max_sequences = 2;
    c.kv_dtype = dtype;
    auto e = Engine::Create(c);
    ASSERT_TRUE(e.ok()) << e.status();
    std::vector<GenerateRequest> reqs(2);
    reqs[0].prompt = (*e)->tokenizer().Encode("The capital of France is", true, false);
    reqs[1].prompt = (*e)->tokenizer().Encode("Once upon a time, in a small village by the sea,", true, false);
    for (auto& r : reqs) {
      r.max_tokens = 12;
      r.sampling.temperature = 0;
      r.stop_at_eog = false;
    }
    auto batched = (*e)->Generate(reqs, nullptr);
    ASSERT_TRUE(batched.ok()) << batched.status();
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto alone = (*e)->Generate({reqs[i]}, nullptr);
      ASSERT_TRUE(alone.ok()) << alone.status();
      EXPECT_EQ((*alone)[0].tokens, (*batched)[i].tokens) << "request " << i;
      EXPECT_EQ((*alone)[0].tokens.size(), 12u);
    }
    const std::vector<int32_t>& toks = (*batched)[0].tokens;
    if (dtype == KvDtype::kF16) {
      f16_tokens = toks;
    } else {
      ASSERT_GE(toks.size(), 3u);
      EXPECT_EQ(std::vector<int32_t>(toks.begin(), toks.begin() + 3),
                std::vector<int32_t>(f16_tokens.begin(), f16_tokens.begin() + 3))
          << "first greedy tokens differ from the f16 cache's";
    }
  }
}

}  // namespace
}  // namespace strata
