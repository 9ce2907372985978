// Batching invariants of the forward pass on a random in-memory model: the
// logits of a sequence do not depend on what else is in the batch, on how its
// prompt is chunked, or on which KV blocks it got. (Correctness against an
// independent implementation is tests/reference/.)
#include "worker/model/llama_model.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "worker/backend/cpu_backend.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

struct RandomModel {
  ModelConfig config;
  ModelWeights weights;
  std::vector<std::vector<float>> storage;

  explicit RandomModel(bool qkv_bias = false) {
    config.arch = "llama";
    config.n_layers = 2;
    config.d_model = 64;
    config.n_heads = 4;
    config.n_kv_heads = 2;
    config.head_dim = 16;
    config.d_ff = 96;
    config.vocab_size = 50;
    config.context_length = 256;
    config.qkv_bias = qkv_bias;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto matrix = [&](int64_t rows, int64_t cols, float scale) {
      storage.emplace_back(rows * cols);
      for (float& x : storage.back()) x = nd(rng) * scale;
      WeightMatrix m;
      m.type = TensorType::kF32;
      m.data = storage.back().data();
      m.rows = rows;
      m.cols = cols;
      m.row_stride = cols * 4;
      return m;
    };
    auto vec = [&](int64_t n, float mean, float scale) {
      std::vector<float> v(n);
      for (float& x : v) x = mean + nd(rng) * scale;
      return v;
    };
    const int64_t d = config.d_model, q = config.n_heads * config.head_dim,
                  kv = config.n_kv_heads * config.head_dim;
    weights.token_embd = matrix(config.vocab_size, d, 1.0f);
    weights.output = matrix(config.vocab_size, d, 0.2f);
    weights.output_norm = vec(d, 1.0f, 0.1f);
    weights.layers.resize(config.n_layers);
    for (auto& l : weights.layers) {
      l.attn_norm = vec(d, 1.0f, 0.1f);
      l.ffn_norm = vec(d, 1.0f, 0.1f);
      l.wq = matrix(q, d, 0.15f);
      l.wk = matrix(kv, d, 0.15f);
      l.wv = matrix(kv, d, 0.15f);
      l.wo = matrix(d, q, 0.15f);
      l.w_gate = matrix(config.d_ff, d, 0.15f);
      l.w_up = matrix(config.d_ff, d, 0.15f);
      l.w_down = matrix(d, config.d_ff, 0.15f);
      if (qkv_bias) {
        l.bq = vec(q, 0.0f, 0.1f);
        l.bk = vec(kv, 0.0f, 0.1f);
        l.bv = vec(kv, 0.0f, 0.1f);
      }
    }
    weights.rope_inv_freq = RopeInverseFrequencies(config);
  }
};

class LlamaModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = ThreadPool::Create(2).value();
    backend_ = std::make_unique<CpuBackend>(pool_.get());
    model_ = LlamaModel::Create(&rm_.config, &rm_.weights, backend_.get()).value();
    KvCacheConfig kc;
    kc.n_layers = rm_.config.n_layers;
    kc.n_kv_heads = rm_.config.n_kv_heads;
    kc.head_dim = rm_.config.head_dim;
    kc.block_size = 4;
    kc.num_blocks = 64;
    kc.dtype = KvDtype::kF32;
    kv_ = KvCache::Create(kc).value();
  }

  // Runs `tokens` of one sequence from position 0 in chunks; returns the
  // logits of every position.
  std::vector<float> RunChunked(const std::vector<int32_t>& tokens, int chunk,
                                const std::vector<int32_t>& table) {
    std::vector<float> all, logits;
    for (size_t start = 0; start < tokens.size(); start += chunk) {
      ForwardBatch b;
      b.n_seqs = 1;
      b.max_blocks_per_seq = static_cast<int32_t>(table.size());
      b.block_tables = table;
      for (size_t i = start; i < std::min(tokens.size(), start + chunk); ++i) {
        b.tokens.push_back(tokens[i]);
        b.positions.push_back(static_cast<int32_t>(i));
        b.token_seq.push_back(0);
        b.logit_rows.push_back(static_cast<int32_t>(i - start));
      }
      EXPECT_TRUE(model_->Forward(b, kv_.get(), &logits).ok());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  }

  RandomModel rm_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<KvCache> kv_;
};

const std::vector<int32_t> kPrompt = {3, 17, 42, 8, 8, 1, 0, 49, 23, 11, 5};

void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol) << "index " << i;
}

TEST_F(LlamaModelTest, ChunkedPrefillMatchesOneShot) {
  const std::vector<int32_t> table = {5, 9, 2};
  const auto one = RunChunked(kPrompt, 100, table);
  ASSERT_EQ(one.size(), kPrompt.size() * 50);
  for (int chunk : {1, 3, 4}) ExpectClose(RunChunked(kPrompt, chunk, {12, 3, 30}), one, 2e-4f);
}

TEST_F(LlamaModelTest, LogitsDoNotDependOnBatchNeighbours) {
  const auto alone = RunChunked(kPrompt, 100, {1, 2, 3});
  // Sequence 1 = other tokens, prefilled to position 6 first.
  std::vector<float> logits;
  ForwardBatch pre;
  pre.n_seqs = 2;
  pre.max_blocks_per_seq = 3;
  pre.block_tables = {10, 11, 12, 20, 21, 22};
  for (int i = 0; i < 6; ++i) {
    pre.tokens.push_back(30 + i);
    pre.positions.push_back(i);
    pre.token_seq.push_back(1);
  }
  pre.logit_rows = {5};
  ASSERT_TRUE(model_->Forward(pre, kv_.get(), &logits).ok());
  // Now one batch: the whole prompt of sequence 0 plus a decode of sequence 1.
  ForwardBatch b = pre;
  b.tokens.clear();
  b.positions.clear();
  b.token_seq.clear();
  b.tokens.push_back(7);
  b.positions.push_back(6);
  b.token_seq.push_back(1);
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    b.tokens.push_back(kPrompt[i]);
    b.positions.push_back(static_cast<int32_t>(i));
    b.token_seq.push_back(0);
  }
  b.block_tables = {40, 41, 42, 20, 21, 22};
  b.logit_rows.clear();
  for (size_t i = 0; i < kPrompt.size(); ++i) b.logit_rows.push_back(static_cast<int32_t>(i + 1));
  ASSERT_TRUE(model_->Forward(b, kv_.get(), &logits).ok());
  ExpectClose(logits, alone, 2e-4f);
}

TEST_F(LlamaModelTest, RejectsBadBatches) {
  std::vector<float> logits;
  ForwardBatch b;
  b.n_seqs = 1;
  b.max_blocks_per_seq = 2;
  b.block_tables = {1, 2};
  b.tokens = {50};  // vocab is 50
  b.positions = {0};
  b.token_seq = {0};
  b.logit_rows = {0};
  absl::Status st = model_->Forward(b, kv_.get(), &logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outside the vocabulary"), absl::string_view::npos) << st;
  b.tokens = {1};
  b.positions = {256};
  st = model_->Forward(b, kv_.get(), &logits);
  EXPECT_NE(st.message().find("context length"), absl::string_view::npos) << st;
  b.positions = {9};  // past the 2-block table of 4-token blocks
  st = model_->Forward(b, kv_.get(), &logits);
  EXPECT_NE(st.message().find("block table"), absl::string_view::npos) << st;
  b.positions = {0};
  b.logit_rows = {1};
  EXPECT_FALSE(model_->Forward(b, kv_.get(), &logits).ok());
}

TEST(RopeInverseFrequencies, Llama3ScalingMatchesTransformersRule) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = 500000.0f;
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_context = 8192;
  const auto inv = RopeInverseFrequencies(c);
  // High-frequency pairs are untouched, low-frequency ones divided by 8.
  EXPECT_FLOAT_EQ(inv[0], 1.0f);
  const double base63 = std::pow(500000.0, -2.0 * 63 / 128);
  EXPECT_NEAR(inv[63], base63 / 8, base63 * 1e-5);
}

}  // namespace
}  // namespace strata
