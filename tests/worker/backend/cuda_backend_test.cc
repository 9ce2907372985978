// CudaBackend's op mapping, end to end, without a GPU: LlamaModel runs on
// CudaBackend over HostKernelOps (the kernels' own source on the host harness,
// cuBLASLt emulated from the GEMM plans) and its logits are held to the same
// model on CpuBackend (kernels/cpu, the reference ops), step by step through a
// prefill (the FlashAttention kernel), decode steps (split-KV decode kernel,
// QGemv) and a mixed chunk.
//
// Tolerances (logits of order 1-10 from a 2-layer random model):
//   - the CUDA path rounds activations to BF16/F16 before every GEMM and the
//     prefill kernel feeds Q, P, K, V to the tensor cores as BF16 (about 3
//     significant digits each); the CPU path quantises activations to 8 bits
//     for quantised weights (llama.cpp's scheme) and keeps f32 otherwise.
//   So we require max |diff| <= 0.04 * (1 + max |logit|) per step and the same
//   argmax on every row whose top-2 gap exceeds twice that bound. With an FP8
//   (E4M3) KV cache the bound is 0.08: one E4M3 step is 6-12% of a value, and
//   the two paths' K/V differ by enough to round some elements to neighbouring
//   codes. A wrong mapping
//   (a transposed GEMM, a wrong stride, a missed bias, a wrong position or KV
//   block) moves logits by O(1) and fails both.
#include "worker/backend/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/thread_pool.h"
#include "worker/backend/cpu_backend.h"
#include "worker/backend/cuda/host_kernel_ops.h"
#ifdef STRATA_TEST_DEVICE_KERNEL_OPS
#include "worker/backend/cuda/device_kernel_ops.h"
#endif
#include "worker/kv_cache.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"
#include "worker/model/model_shard.h"
#include "tests/testing/thread_communicator.h"
#include "worker/sampler.h"

namespace strata {
namespace {

// --- a random model in a chosen weight type ------------------------------------

uint16_t F16(float x) { return F32ToF16(x); }

std::vector<uint8_t> QuantizeRows(TensorType t, const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x.data() + r * cols;
    for (int64_t b = 0; b < cols / kQK32; ++b) {
      const float* v = row + b * kQK32;
      if (t == TensorType::kQ8_0) {
        BlockQ8_0 blk{};
        float amax = 0;
        for (int i = 0; i < kQK32; ++i) amax = std::max(amax, std::fabs(v[i]));
        const float d = amax / 127.0f;
        blk.d = F16(d);
        for (int i = 0; i < kQK32; ++i) blk.qs[i] = static_cast<int8_t>(std::lround(d > 0 ? v[i] / d : 0));
        const auto* p = reinterpret_cast<const uint8_t*>(&blk);
        out.insert(out.end(), p, p + sizeof(blk));
      } else if (t == TensorType::kQ4_0) {
        BlockQ4_0 blk{};
        float max = 0;
        for (int i = 0; i < kQK32; ++i) {
          if (std::fabs(v[i]) > std::fabs(max)) max = v[i];
        }
        const float d = max / -8.0f;
        blk.d = F16(d);
        auto q = [&](float f) { return std::min(15, static_cast<int>(d != 0 ? f / d + 8.5f : 8)); };
        for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(q(v[j]) | (q(v[j + 16]) << 4));
        const auto* p = reinterpret_cast<const uint8_t*>(&blk);
        out.insert(out.end(), p, p + sizeof(blk));
      } else {  // Q4_1
        BlockQ4_1 blk{};
        float lo = v[0], hi = v[0];
        for (int i = 0; i < kQK32; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
        const float d = (hi - lo) / 15.0f;
        blk.d = F16(d);
        blk.m = F16(lo);
        auto q = [&](float f) { return std::min(15, static_cast<int>(d != 0 ? (f - lo) / d + 0.5f : 0)); };
        for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(q(v[j]) | (q(v[j + 16]) << 4));
        const auto* p = reinterpret_cast<const uint8_t*>(&blk);
        out.insert(out.end(), p, p + sizeof(blk));
      }
    }
  }
  return out;
}

struct RandomModel {
  ModelConfig config;
  ModelWeights weights;
  std::vector<std::vector<uint8_t>> storage;

  RandomModel(TensorType type, bool qkv_bias, bool tied) {
    config.arch = "llama";
    config.n_layers = 2;
    config.d_model = 128;
    config.n_heads = 4;
    config.n_kv_heads = 2;
    config.head_dim = 64;  // a prefill-kernel head size
    config.d_ff = 160;
    config.vocab_size = 96;
    config.context_length = 512;
    config.qkv_bias = qkv_bias;
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto matrix = [&](int64_t rows, int64_t cols, float scale) {
      std::vector<float> f(rows * cols);
      for (float& x : f) x = nd(rng) * scale;
      WeightMatrix m;
      m.type = type;
      m.rows = rows;
      m.cols = cols;
      if (type == TensorType::kF32) {
        storage.emplace_back(f.size() * 4);
        std::memcpy(storage.back().data(), f.data(), f.size() * 4);
        m.row_stride = cols * 4;
      } else if (type == TensorType::kF16 || type == TensorType::kBF16) {
        storage.emplace_back(f.size() * 2);
        auto* h = reinterpret_cast<uint16_t*>(storage.back().data());
        for (size_t i = 0; i < f.size(); ++i) h[i] = type == TensorType::kF16 ? F16(f[i]) : F32ToBF16(f[i]);
        m.row_stride = cols * 2;
      } else {
        storage.push_back(QuantizeRows(type, f, rows, cols));
        m.row_stride = static_cast<int64_t>(storage.back().size()) / rows;
      }
      m.data = storage.back().data();
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
    weights.output = tied ? weights.token_embd : matrix(config.vocab_size, d, 0.2f);
    weights.output_norm = vec(d, 1.0f, 0.1f);
    weights.layers.resize(config.n_layers);
    for (auto& l : weights.layers) {
      l.attn_norm = vec(d, 1.0f, 0.1f);
      l.ffn_norm = vec(d, 1.0f, 0.1f);
      l.wq = matrix(q, d, 0.12f);
      l.wk = matrix(kv, d, 0.12f);
      l.wv = matrix(kv, d, 0.12f);
      l.wo = matrix(d, q, 0.12f);
      l.w_gate = matrix(config.d_ff, d, 0.12f);
      l.w_up = matrix(config.d_ff, d, 0.12f);
      l.w_down = matrix(d, config.d_ff, 0.12f);
      if (qkv_bias) {
        l.bq = vec(q, 0.0f, 0.1f);
        l.bk = vec(kv, 0.0f, 0.1f);
        l.bv = vec(kv, 0.0f, 0.1f);
      }
    }
    weights.rope_inv_freq = RopeInverseFrequencies(config);
  }
};

// --- one model on two backends -----------------------------------------------

struct Runner {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> kv;
};

KvCacheConfig KvConfigFor(const ModelConfig& c, KvDtype dtype) {
  KvCacheConfig kc;
  kc.n_layers = c.n_layers;
  kc.n_kv_heads = c.n_kv_heads;
  kc.head_dim = c.head_dim;
  kc.block_size = 16;
  kc.num_blocks = 24;
  kc.dtype = dtype;
  return kc;
}

// Every layer matrix of an F32 model replaced by its FP8 E4M3 per-row round
// trip (what CudaBackend's fp8_weights stores), so the CPU runs the same weights.
void RoundTripLayersThroughFp8(RandomModel& m) {
  for (LayerWeights& l : m.weights.layers) {
    for (WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      ASSERT_EQ(w->type, TensorType::kF32);
      auto* x = const_cast<float*>(static_cast<const float*>(w->data));  // our own storage
      std::vector<uint8_t> codes(w->cols);
      for (int64_t r = 0; r < w->rows; ++r) {
        float* row = x + r * w->cols;
        const float scale = QuantizeRowFp8(row, w->cols, codes.data());
        for (int64_t c = 0; c < w->cols; ++c) row[c] = E4M3ToF32(codes[c]) * scale;
      }
    }
  }
}

Runner MakeRunner(std::unique_ptr<Backend> backend, const RandomModel& m, KvDtype dtype) {
  Runner r;
  r.backend = std::move(backend);
  r.model = LlamaModel::Create(&m.config, &m.weights, r.backend.get()).value();
  r.kv = KvCache::Create(KvConfigFor(m.config, dtype), r.backend.get()).value();
  return r;
}

// Step batches: A (prompt 37 tokens over 3 blocks) + B (prompt 9), then three
// decode steps of both, then a chunk of 20 more prompt tokens for A beside B's
// decode token.
std::vector<ForwardBatch> Steps() {
  const std::vector<int32_t> table = {3, 7, 1, 12, 0, 0, 5, 9, 2, 14, 0, 0};  // [2 seqs x 6 blocks]
  std::vector<ForwardBatch> steps;
  int32_t pos_a = 0, pos_b = 0;
  auto step = [&](int a_tokens, int b_tokens) {
    ForwardBatch b;
    b.n_seqs = 2;
    b.max_blocks_per_seq = 6;
    b.block_tables = table;
    for (int i = 0; i < a_tokens; ++i) {
      b.tokens.push_back((pos_a * 7 + 3) % 96);
      b.positions.push_back(pos_a++);
      b.token_seq.push_back(0);
    }
    if (a_tokens > 0) b.logit_rows.push_back(a_tokens - 1);
    for (int i = 0; i < b_tokens; ++i) {
      b.tokens.push_back((pos_b * 5 + 11) % 96);
      b.positions.push_back(pos_b++);
      b.token_seq.push_back(1);
    }
    if (b_tokens > 0) b.logit_rows.push_back(a_tokens + b_tokens - 1);
    steps.push_back(b);
  };
  step(37, 9);
  for (int i = 0; i < 3; ++i) step(1, 1);
  step(20, 1);
  return steps;
}

void ExpectLogitsAgree(const std::vector<float>& want, const std::vector<float>& got, int64_t vocab, float rel,
                       const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  float max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " index " << i;
    max_abs = std::max(max_abs, std::fabs(want[i]));
    max_diff = std::max(max_diff, std::fabs(want[i] - got[i]));
  }
  const float bound = rel * (1.0f + max_abs);
  EXPECT_LE(max_diff, bound) << what << ": max |logit| " << max_abs;
  for (size_t r = 0; r < want.size() / vocab; ++r) {
    const float* w = want.data() + r * vocab;
    const float* g = got.data() + r * vocab;
    std::vector<float> sorted(w, w + vocab);
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] <= 2 * bound) continue;
    EXPECT_EQ(std::max_element(w, w + vocab) - w, std::max_element(g, g + vocab) - g) << what << " row " << r;
  }
}

struct Case {
  TensorType weights;
  KvDtype kv;
  bool qkv_bias;
  bool tied;
};

// Runs Steps() on CpuBackend and on CudaBackend over `ops`; returns the ops'
// launch counts when they are HostKernelOps.
void ExpectModelParity(const Case& c, std::unique_ptr<KernelOps> ops) {
  const auto start = std::chrono::steady_clock::now();
  const RandomModel m(c.weights, c.qkv_bias, c.tied);
  auto pool = ThreadPool::Create(1).value();
  Runner cpu = MakeRunner(std::make_unique<CpuBackend>(pool.get()), m, c.kv);
  auto* host_ops = dynamic_cast<HostKernelOps*>(ops.get());
  Runner gpu = MakeRunner(CudaBackend::Create(std::move(ops)).value(), m, c.kv);

  const std::vector<ForwardBatch> steps = Steps();
  for (size_t i = 0; i < steps.size(); ++i) {
    std::vector<float> want, got;
    ASSERT_TRUE(cpu.model->Forward(steps[i], cpu.kv.get(), &want).ok());
    const absl::Status s = gpu.model->Forward(steps[i], gpu.kv.get(), &got);
    ASSERT_TRUE(s.ok()) << s;
    const float rel = c.kv == KvDtype::kFp8E4M3 ? 0.08f : 0.04f;
    ExpectLogitsAgree(want, got, m.config.vocab_size, rel, "step " + std::to_string(i));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120));
  if (host_ops == nullptr) return;
  // The kernels the mapping promises ran.
  const auto& n = host_ops->launches();
  auto count = [&](const char* op) { return n.count(op) ? n.at(op) : 0; };
  EXPECT_EQ(count("PrefillAttention"), 2 * m.config.n_layers) << "steps 0 and 4 have a >= 16-token chunk";
  EXPECT_EQ(count("DecodeAttention"), 3 * m.config.n_layers);
  const bool quantised = c.weights == TensorType::kQ8_0 || c.weights == TensorType::kQ4_0 ||
                         c.weights == TensorType::kQ4_1;
  if (quantised) {
    EXPECT_GT(count("QGemv"), 0);
    EXPECT_GT(count("DequantBf16"), 0);
  } else {
    EXPECT_EQ(count("QGemv"), 0);
  }
  EXPECT_GT(count("Gemm"), 0);
  // Decode steps 1-3 run as one CUDA graph (same shape and context bucket):
  // captured at step 1, replayed at steps 2 and 3.
  EXPECT_EQ(count("GraphCapture"), 1);
  EXPECT_EQ(count("GraphLaunch"), 3);
}

class CudaBackendOnHarness : public ::testing::TestWithParam<Case> {};

TEST_P(CudaBackendOnHarness, ModelLogitsMatchCpuBackend) {
  ExpectModelParity(GetParam(), std::make_unique<HostKernelOps>());
}

#ifdef STRATA_TEST_DEVICE_KERNEL_OPS
// The same on a GPU (tests/gpu/run_gpu_checks.sh runs it there; skips elsewhere).
class CudaBackendOnDevice : public ::testing::TestWithParam<Case> {};

TEST_P(CudaBackendOnDevice, ModelLogitsMatchCpuBackend) {
  if (!DeviceKernelOps::CheckDevice(0).ok()) GTEST_SKIP() << "no CUDA device (sm_80+) visible";
  auto ops = DeviceKernelOps::Create(0);
  ASSERT_TRUE(ops.ok()) << ops.status();
  ExpectModelParity(GetParam(), std::move(*ops));
}
#endif

const auto kCases = ::testing::Values(Case{TensorType::kBF16, KvDtype::kF16, false, false},
                                      Case{TensorType::kF16, KvDtype::kBF16, true, false},
                                      Case{TensorType::kF32, KvDtype::kF32, false, true},
                                      Case{TensorType::kQ8_0, KvDtype::kFp8E4M3, false, false},
                                      Case{TensorType::kQ4_0, KvDtype::kInt8, true, true},
                                      Case{TensorType::kQ4_1, KvDtype::kF16, false, false});

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return std::string(TensorTypeName(info.param.weights)) + "_kv" + std::to_string(static_cast<int>(info.param.kv)) +
         (info.param.qkv_bias ? "_bias" : "") + (info.param.tied ? "_tied" : "");
}

INSTANTIATE_TEST_SUITE_P(WeightAndKvTypes, CudaBackendOnHarness, kCases, CaseName);
#ifdef STRATA_TEST_DEVICE_KERNEL_OPS
INSTANTIATE_TEST_SUITE_P(WeightAndKvTypes, CudaBackendOnDevice, kCases, CaseName);
#endif

// Long decode: the context bucket grows (64 -> 128), which must re-capture; a
// replay of a graph with a stale max_context would attend to too few positions.
TEST(CudaBackendGraphs, DecodeReplaysMatchCpuAcrossContextBuckets) {
  const RandomModel m(TensorType::kBF16, false, false);
  auto pool = ThreadPool::Create(1).value();
  Runner cpu = MakeRunner(std::make_unique<CpuBackend>(pool.get()), m, KvDtype::kF16);
  auto ops = std::make_unique<HostKernelOps>();
  HostKernelOps* host_ops = ops.get();
  Runner gpu = MakeRunner(CudaBackend::Create(std::move(ops)).value(), m, KvDtype::kF16);
  Runner eager = MakeRunner(CudaBackend::Create(std::make_unique<HostKernelOps>(), {.cuda_graphs = false}).value(),
                            m, KvDtype::kF16);
  ForwardBatch b;
  b.n_seqs = 2;
  b.max_blocks_per_seq = 6;
  b.block_tables = {3, 7, 1, 12, 4, 0, 5, 9, 2, 14, 0, 0};
  for (int i = 0; i < 64; ++i) {
    b.tokens.push_back((i * 7 + 3) % 96);
    b.positions.push_back(i < 56 ? i : i - 56);
    b.token_seq.push_back(i < 56 ? 0 : 1);
  }
  b.logit_rows = {55, 63};
  for (int step = 0; step < 12; ++step) {
    std::vector<float> want, got, got_eager;
    ASSERT_TRUE(cpu.model->Forward(b, cpu.kv.get(), &want).ok());
    ASSERT_TRUE(gpu.model->Forward(b, gpu.kv.get(), &got).ok());
    ASSERT_TRUE(eager.model->Forward(b, eager.kv.get(), &got_eager).ok());
    ExpectLogitsAgree(want, got, m.config.vocab_size, 0.04f, "step " + std::to_string(step));
    EXPECT_EQ(got, got_eager) << "graph replay differs from eager launches at step " << step;
    // Next: one decode token each (A reaches position 64 at step 9).
    const int32_t next_a = b.positions[b.logit_rows[0]] + 1, next_b = b.positions[b.logit_rows[1]] + 1;
    b.tokens = {static_cast<int32_t>(next_a % 96), static_cast<int32_t>((next_b * 5) % 96)};
    b.positions = {next_a, next_b};
    b.token_seq = {0, 1};
    b.logit_rows = {0, 1};
  }
  const auto& n = host_ops->launches();
  EXPECT_EQ(n.at("GraphLaunch"), 11);
  EXPECT_EQ(n.at("GraphCapture"), 2) << "one per context bucket (64, 128)";
  EXPECT_EQ(host_ops->live_graphs(), 2);
}

// Continuous batching: decode steps of 3, 4, 5, 8, 6, 7, 2, 1, 3 sequences.
// The model pads each to the backend's bucket (1, 2, 4, then multiples of 8)
// with pad sequences on the null block, so the nine steps replay four graphs;
// the real rows' logits match the CPU's and no pad row comes back.
TEST(CudaBackendGraphs, DecodeBatchesArePaddedToBucketsAndShareGraphs) {
  const RandomModel m(TensorType::kBF16, false, false);
  auto pool = ThreadPool::Create(1).value();
  Runner cpu = MakeRunner(std::make_unique<CpuBackend>(pool.get()), m, KvDtype::kF16);
  auto ops = std::make_unique<HostKernelOps>();
  HostKernelOps* host_ops = ops.get();
  auto cuda = CudaBackend::Create(std::move(ops)).value();
  CudaBackend* backend = cuda.get();
  Runner gpu = MakeRunner(std::move(cuda), m, KvDtype::kF16);
  EXPECT_EQ(backend->GraphBatchBucket(1), 1);
  EXPECT_EQ(backend->GraphBatchBucket(3), 4);
  EXPECT_EQ(backend->GraphBatchBucket(5), 8);
  EXPECT_EQ(backend->GraphBatchBucket(9), 16);
  EXPECT_EQ(backend->GraphBatchBucket(250), 256);
  EXPECT_EQ(backend->GraphBatchBucket(257), 257);  // past max_graph_tokens: as is

  constexpr int kSeqs = 8;
  std::vector<int32_t> next_pos(kSeqs, 0);
  auto run = [&](const ForwardBatch& b, const std::string& what) {
    std::vector<float> want, got;
    ASSERT_TRUE(cpu.model->Forward(b, cpu.kv.get(), &want).ok());
    const absl::Status s = gpu.model->Forward(b, gpu.kv.get(), &got);
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_EQ(got.size(), b.logit_rows.size() * m.config.vocab_size) << what;
    ExpectLogitsAgree(want, got, m.config.vocab_size, 0.04f, what);
  };
  // The first k sequences, `each` tokens apiece; sequence i owns blocks 1+i and 9+i.
  auto batch = [&](int k, int each) {
    ForwardBatch b;
    b.n_seqs = k;
    b.max_blocks_per_seq = 2;
    for (int i = 0; i < k; ++i) {
      b.block_tables.push_back(1 + i);
      b.block_tables.push_back(9 + i);
      for (int t = 0; t < each; ++t) {
        b.tokens.push_back((next_pos[i] * 5 + i * 11 + 1) % 96);
        b.positions.push_back(next_pos[i]++);
        b.token_seq.push_back(i);
      }
      b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size()) - 1);
    }
    return b;
  };
  run(batch(kSeqs, 5), "prompts");  // 5 rows per sequence: eager, no padding
  EXPECT_EQ(host_ops->launches().count("GraphCapture"), 0u);
  const int sizes[] = {3, 4, 5, 8, 6, 7, 2, 1, 3};
  for (const int k : sizes) run(batch(k, 1), absl::StrCat("decode of ", k, " sequences"));
  const auto& n = host_ops->launches();
  EXPECT_EQ(n.at("GraphLaunch"), 9);
  EXPECT_EQ(n.at("GraphCapture"), 4) << "one per bucket: 4, 8, 2, 1";
}

// A full graph cache destroys the least recently launched graph: with room
// for two, after two warm-up steps of 4 sequences (buffers at their largest,
// graph "4" cached), batch sizes 1, 2, 1, 4, 1 capture 1, 2 (evicting 4) and
// 4 (evicting 2) and replay 1 from the cache twice: 3 captures. Dropping the
// whole cache when full would take 4.
TEST(CudaBackendGraphs, AFullCacheEvictsTheLeastRecentlyLaunchedGraph) {
  const RandomModel m(TensorType::kBF16, false, false);
  auto ops = std::make_unique<HostKernelOps>();
  HostKernelOps* host_ops = ops.get();
  Runner gpu = MakeRunner(CudaBackend::Create(std::move(ops), {.max_graphs = 2}).value(), m, KvDtype::kF16);
  std::vector<int32_t> next_pos(4, 0);
  auto step = [&](int k) {
    ForwardBatch b;
    b.n_seqs = k;
    b.max_blocks_per_seq = 1;
    for (int i = 0; i < k; ++i) {
      b.block_tables.push_back(1 + i);
      b.tokens.push_back(i + 1);
      b.positions.push_back(next_pos[i]++);
      b.token_seq.push_back(i);
      b.logit_rows.push_back(i);
    }
    std::vector<float> got;
    ASSERT_TRUE(gpu.model->Forward(b, gpu.kv.get(), &got).ok());
  };
  step(4);
  step(4);
  auto count = [&](const char* what) {
    auto it = host_ops->launches().find(what);
    return it == host_ops->launches().end() ? int64_t{0} : int64_t{it->second};
  };
  ASSERT_EQ(host_ops->live_graphs(), 1);
  const int64_t captures = count("GraphCapture"), launches = count("GraphLaunch");
  for (const int k : {1, 2, 1, 4, 1}) step(k);
  EXPECT_EQ(count("GraphCapture") - captures, 3);
  EXPECT_EQ(count("GraphLaunch") - launches, 5);
  EXPECT_EQ(host_ops->live_graphs(), 2);
}

// Sampling on the device (LlamaModel::ForwardSample -> the sampling kernel) vs
// the same backend's logits copied to the host Sampler, with equally seeded
// samplers: greedy, top-k + temperature, top-p, min-p rows. Same logits, so
// the same tokens; logprobs within 1e-4 (float vs double sums).
TEST(CudaBackendSampling, DeviceSamplingMatchesTheHostSamplerOnTheSameLogits) {
  const RandomModel m(TensorType::kBF16, false, false);
  auto ops = std::make_unique<HostKernelOps>();
  HostKernelOps* host_ops = ops.get();
  Runner device = MakeRunner(CudaBackend::Create(std::move(ops)).value(), m, KvDtype::kF16);
  Runner host = MakeRunner(CudaBackend::Create(std::make_unique<HostKernelOps>()).value(), m, KvDtype::kF16);
  ASSERT_TRUE(device.model->CanSampleOnBackend());
  SamplingParams a, b;
  a.temperature = 0.0f;  // greedy
  b.temperature = 1.3f;
  b.top_k = 20;
  b.top_p = 0.9f;
  b.min_p = 0.02f;
  a.repetition_penalty = b.repetition_penalty = 1.0f;
  a.seed = 11;
  b.seed = 12;
  std::unique_ptr<Sampler> on[2] = {Sampler::Create(a).value(), Sampler::Create(b).value()};
  std::unique_ptr<Sampler> off[2] = {Sampler::Create(a).value(), Sampler::Create(b).value()};
  int sampled = 0, stochastic_differs_from_argmax = 0;
  for (const ForwardBatch& batch : Steps()) {
    // Steps() puts A's row first when both sample; map rows to samplers by sequence.
    std::vector<RowSamplingKnobs> knobs;
    std::vector<int> who;
    for (const int32_t row : batch.logit_rows) {
      who.push_back(batch.token_seq[row]);
      knobs.push_back(on[who.back()]->NextBackendDraw());
    }
    std::vector<RowSample> got;
    const absl::Status s = device.model->ForwardSample(batch, device.kv.get(), knobs, &got);
    ASSERT_TRUE(s.ok()) << s;
    std::vector<float> logits;
    ASSERT_TRUE(host.model->Forward(batch, host.kv.get(), &logits).ok());
    ASSERT_EQ(got.size(), batch.logit_rows.size());
    for (size_t r = 0; r < got.size(); ++r) {
      const absl::Span<const float> row(logits.data() + r * m.config.vocab_size, m.config.vocab_size);
      absl::StatusOr<Sampler::Result> want = off[who[r]]->Sample(row, {});
      ASSERT_TRUE(want.ok()) << want.status();
      EXPECT_EQ(got[r].token, want->token) << "row " << r << " of sequence " << who[r];
      EXPECT_NEAR(got[r].logprob, want->logprob, 1e-4);
      ++sampled;
      if (who[r] == 1 && want->token != std::max_element(row.begin(), row.end()) - row.begin()) {
        ++stochastic_differs_from_argmax;
      }
    }
  }
  EXPECT_EQ(host_ops->launches().at("Sample"), static_cast<int64_t>(Steps().size()));
  EXPECT_GE(sampled, 8);
  EXPECT_GE(stochastic_differs_from_argmax, 1) << "the stochastic rows never left the argmax";
  // A knob count that does not match the logit rows is refused before the pass.
  std::vector<RowSample> out;
  EXPECT_EQ(device.model->ForwardSample(Steps()[0], device.kv.get(), {}, &out).code(),
            absl::StatusCode::kInvalidArgument);
}

// Tensor parallelism on the backend: two ranks (threads), each a CudaBackend
// on the harness with its shard and a thread communicator, prefill then
// decode steps of 2, 1, 2 sequences. The all-reduces and the LM head's
// all-gather are recorded with the kernels (Backend::Collective), so every
// decode step replays one graph per rank, the collectives inside it; the
// logits match the whole model on the CPU.
// A TP test's steps: a prefill of two prompts (A 20 tokens, the prefill
// kernel; B 5), then decode steps of A and B, A alone, both, both.
std::vector<ForwardBatch> TpSteps() {
  std::vector<ForwardBatch> steps;
  ForwardBatch b;  // prompts: A 20 tokens (prefill kernel), B 5
  b.n_seqs = 2;
  b.max_blocks_per_seq = 3;
  b.block_tables = {3, 7, 1, 5, 9, 2};
  for (int i = 0; i < 25; ++i) {
    b.tokens.push_back((i * 7 + 3) % 96);
    b.positions.push_back(i < 20 ? i : i - 20);
    b.token_seq.push_back(i < 20 ? 0 : 1);
  }
  b.logit_rows = {19, 24};
  steps.push_back(b);
  int32_t pa = 20, pb = 5;
  for (const int k : {2, 1, 2, 2}) {  // decode: A and B, A alone, both, both
    ForwardBatch d;
    d.n_seqs = k;
    d.max_blocks_per_seq = 3;
    d.block_tables = {3, 7, 1};
    d.tokens = {(pa * 5) % 96};
    d.positions = {pa++};
    d.token_seq = {0};
    if (k == 2) {
      d.block_tables.insert(d.block_tables.end(), {5, 9, 2});
      d.tokens.push_back((pb * 3) % 96);
      d.positions.push_back(pb++);
      d.token_seq.push_back(1);
    }
    for (int i = 0; i < k; ++i) d.logit_rows.push_back(i);
    steps.push_back(d);
  }
  return steps;
}

// One rank of a TP group: the shard's weights on CudaBackend over the host
// harness, its model bound to `comm`, an F16 KV cache.
struct TpRank {
  ModelWeights weights;
  HostKernelOps* ops = nullptr;
  std::unique_ptr<CudaBackend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> kv;
};

absl::StatusOr<std::unique_ptr<TpRank>> MakeTpRank(const RandomModel& m, int rank, int tp,
                                                   parallel::Communicator* comm) {
  auto r = std::make_unique<TpRank>();
  r->weights = m.weights;
  ASSIGN_OR_RETURN(const ModelShard shard, PlanModelShard(m.config, r->weights, {rank, tp, 0, 1}, {}));
  RETURN_IF_ERROR(ShardWeights(m.config, shard, &r->weights));
  auto ops = std::make_unique<HostKernelOps>();
  r->ops = ops.get();
  ASSIGN_OR_RETURN(r->backend, CudaBackend::Create(std::move(ops)));
  ASSIGN_OR_RETURN(r->model, LlamaModel::Create(&m.config, &r->weights, shard, r->backend.get()));
  r->model->BindGroups({comm, nullptr});
  KvCacheConfig kc = KvConfigFor(m.config, KvDtype::kF16);
  kc.n_kv_heads = shard.n_kv_heads();
  ASSIGN_OR_RETURN(r->kv, KvCache::Create(kc, r->backend.get()));
  return r;
}

// The TP tests' reference: the whole model's logits for `steps` on CpuBackend
// (fewer entries than steps when a step failed, which the caller asserts).
std::vector<std::vector<float>> CpuLogits(const RandomModel& m, const std::vector<ForwardBatch>& steps) {
  auto pool = ThreadPool::Create(1).value();
  Runner cpu = MakeRunner(std::make_unique<CpuBackend>(pool.get()), m, KvDtype::kF16);
  std::vector<std::vector<float>> out;
  for (const ForwardBatch& b : steps) {
    std::vector<float> logits;
    const absl::Status s = cpu.model->Forward(b, cpu.kv.get(), &logits);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) break;
    out.push_back(logits);
  }
  return out;
}

TEST(CudaBackendTensorParallel, DecodeStepsAreGraphsWithTheirCollectives) {
  const RandomModel m(TensorType::kBF16, false, false);
  const std::vector<ForwardBatch> steps = TpSteps();
  const std::vector<std::vector<float>> want = CpuLogits(m, steps);
  ASSERT_EQ(want.size(), steps.size());
  constexpr int kTp = 2;
  testing::ThreadGroup group(kTp);
  std::vector<std::vector<std::vector<float>>> got(kTp);
  std::vector<std::map<std::string, int64_t>> launches(kTp);
  std::vector<std::thread> threads;
  for (int t = 0; t < kTp; ++t) {
    threads.emplace_back([&, t] {
      testing::ThreadCommunicator comm(&group, t);
      absl::StatusOr<std::unique_ptr<TpRank>> rank = MakeTpRank(m, t, kTp, &comm);
      ASSERT_TRUE(rank.ok()) << rank.status();
      for (const ForwardBatch& b : steps) {
        std::vector<float> logits;
        const absl::Status s = (*rank)->model->Forward(b, (*rank)->kv.get(), &logits);
        ASSERT_TRUE(s.ok()) << s;
        got[t].push_back(logits);
      }
      for (const auto& [op, n] : (*rank)->ops->launches()) launches[t][op] = n;
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kTp; ++t) {
    ASSERT_EQ(got[t].size(), steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
      ExpectLogitsAgree(want[i], got[t][i], m.config.vocab_size, 0.04f,
                        absl::StrCat("rank ", t, " step ", i));
    }
    EXPECT_EQ(launches[t]["GraphLaunch"], 4) << "rank " << t << ": every decode step is a graph";
    EXPECT_EQ(launches[t]["GraphCapture"], 2) << "rank " << t << ": buckets of 2 and 1 sequences";
    // Per step: the embedding's all-reduce, two per layer, the LM head's gather.
    EXPECT_EQ(launches[t]["Collective"], static_cast<int64_t>(steps.size()) * (2 + 2 * m.config.n_layers));
  }
}

// Device sampling with tensor parallelism: every rank all-gathers the LM head
// and puts the logits in vocab order on the device (StridedCopy); the
// sampling rank draws there (greedy: the CPU's argmax wherever its top-2 gap
// is clear of the BF16 bound), the other rank ends its steps without copying
// logits out (Forward with no logits). Decode steps stay graphs on both.
TEST(CudaBackendTensorParallel, TheSamplingRankDrawsOnTheDeviceTheOtherCopiesNoLogits) {
  const RandomModel m(TensorType::kBF16, false, false);
  const std::vector<ForwardBatch> steps = TpSteps();
  const std::vector<std::vector<float>> want = CpuLogits(m, steps);
  ASSERT_EQ(want.size(), steps.size());
  constexpr int kTp = 2;
  testing::ThreadGroup group(kTp);
  std::vector<std::vector<RowSample>> picks;
  std::vector<std::map<std::string, int64_t>> launches(kTp);
  std::vector<std::thread> threads;
  for (int t = 0; t < kTp; ++t) {
    threads.emplace_back([&, t] {
      testing::ThreadCommunicator comm(&group, t);
      absl::StatusOr<std::unique_ptr<TpRank>> rank = MakeTpRank(m, t, kTp, &comm);
      ASSERT_TRUE(rank.ok()) << rank.status();
      LlamaModel& model = *(*rank)->model;
      ASSERT_TRUE(model.CanSampleOnBackend());
      for (const ForwardBatch& b : steps) {
        if (t == 0) {
          const std::vector<RowSamplingKnobs> greedy(b.logit_rows.size(), RowSamplingKnobs{0.0f});
          std::vector<RowSample> out;
          const absl::Status s = model.ForwardSample(b, (*rank)->kv.get(), greedy, &out);
          ASSERT_TRUE(s.ok()) << s;
          picks.push_back(out);
        } else {
          const absl::Status s = model.Forward(b, (*rank)->kv.get(), nullptr);
          ASSERT_TRUE(s.ok()) << s;
        }
      }
      for (const auto& [op, n] : (*rank)->ops->launches()) launches[t][op] = n;
    });
  }
  for (std::thread& th : threads) th.join();
  ASSERT_EQ(picks.size(), steps.size());
  const int64_t vocab = m.config.vocab_size;
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_EQ(picks[i].size(), steps[i].logit_rows.size()) << "step " << i;
    const float max_abs = std::fabs(*std::max_element(want[i].begin(), want[i].end(), [](float a, float b) {
      return std::fabs(a) < std::fabs(b);
    }));
    const float bound = 0.04f * (1.0f + max_abs);
    for (size_t r = 0; r < picks[i].size(); ++r) {
      const float* w = want[i].data() + r * vocab;
      ASSERT_GE(picks[i][r].token, 0) << "step " << i << " row " << r;
      ASSERT_LT(picks[i][r].token, vocab) << "step " << i << " row " << r;
      std::vector<float> sorted(w, w + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      // Within the bound of the CPU's best either way.
      EXPECT_GE(w[picks[i][r].token], sorted[0] - 2 * bound) << "step " << i << " row " << r;
      if (sorted[0] - sorted[1] > 2 * bound) {
        EXPECT_EQ(picks[i][r].token, std::max_element(w, w + vocab) - w) << "step " << i << " row " << r;
      }
    }
  }
  EXPECT_EQ(launches[0]["Sample"], static_cast<int64_t>(steps.size()));
  EXPECT_EQ(launches[1]["Sample"], 0);
  for (int t = 0; t < kTp; ++t) {
    EXPECT_EQ(launches[t]["GraphLaunch"], 4) << "rank " << t << ": every decode step is a graph";
    EXPECT_EQ(launches[t]["StridedCopy"], static_cast<int64_t>(steps.size()) * kTp) << "rank " << t;
  }
}

// FP8 weights (per-row scales) with activations quantised per tensor at each
// GEMM, against the CPU running the same FP8-rounded weights in f32. The
// activation quantisation (E4M3: 3 mantissa bits, up to 6.25% per element) is
// the difference (on this random model, up to ~10% of the largest logit): the
// bound is 0.15 * (1 + max |logit|) and a cosine similarity above 0.99.
TEST(CudaBackendFp8, Fp8WeightsMatchCpuOnTheSameRoundedWeights) {
  const RandomModel m(TensorType::kF32, true, false);
  RandomModel rounded(TensorType::kF32, true, false);
  RoundTripLayersThroughFp8(rounded);
  auto pool = ThreadPool::Create(1).value();
  Runner cpu = MakeRunner(std::make_unique<CpuBackend>(pool.get()), rounded, KvDtype::kF16);
  auto ops = std::make_unique<HostKernelOps>();
  HostKernelOps* host_ops = ops.get();
  Runner gpu = MakeRunner(CudaBackend::Create(std::move(ops), {.fp8_weights = true}).value(), m, KvDtype::kF16);
  for (const ForwardBatch& b : Steps()) {
    std::vector<float> want, got;
    ASSERT_TRUE(cpu.model->Forward(b, cpu.kv.get(), &want).ok());
    const absl::Status s = gpu.model->Forward(b, gpu.kv.get(), &got);
    ASSERT_TRUE(s.ok()) << s;
    ExpectLogitsAgree(want, got, m.config.vocab_size, 0.15f, "fp8");
    // And the logits point the same way: cosine similarity, per step.
    double dot = 0, ww = 0, gg = 0;
    for (size_t i = 0; i < want.size(); ++i) dot += double{want[i]} * got[i], ww += double{want[i]} * want[i],
                                             gg += double{got[i]} * got[i];
    EXPECT_GT(dot / std::sqrt(ww * gg), 0.99);  // 0.994-0.997 here; a wrong scale or layout gives < 0.5
  }
  const auto& n = host_ops->launches();
  // Q/K/V share one quantised input, gate/up another; O and down one each: 4 per layer per step.
  EXPECT_EQ(n.at("Fp8Quantize"), 4 * m.config.n_layers * 5);
}

TEST(CudaBackendFp8, Fp8WeightsBelowSm89AreAClearError) {
  const RandomModel m(TensorType::kBF16, false, false);
  HostKernelOpsConfig config;
  config.sm = 80;
  auto backend = CudaBackend::Create(std::make_unique<HostKernelOps>(config), {.fp8_weights = true}).value();
  auto model = LlamaModel::Create(&m.config, &m.weights, backend.get());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(model.status().message().find("sm_89"), std::string::npos) << model.status();
}

// The default model (SmolLM2-135M, Q4_1 GGUF: 30 layers, 9 query / 3 KV heads
// of 64) through CudaBackend on the harness: a 20+-token prompt (prefill kernel,
// dequantise + GEMM) and greedy decode steps (QGemv, decode kernel, graphs),
// logits against CpuBackend's with the bound of the random-model tests.
TEST(CudaBackendRealModel, DefaultModelLogitsMatchCpuBackend) {
  const auto start = std::chrono::steady_clock::now();
  const std::string path = STRATA_DEFAULT_MODEL;
  if (!std::ifstream(path).good()) {
    if (std::getenv("CI")) ADD_FAILURE() << "default model missing at " << path;
    GTEST_SKIP() << "default model not installed (scripts/install_deps.sh)";
  }
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ModelConfig& config = (*loaded)->config;
  auto pool = ThreadPool::Create(2).value();
  std::vector<Runner> runners;
  auto ops = std::make_unique<HostKernelOps>();
  HostKernelOps* host_ops = ops.get();
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<CpuBackend>(pool.get()));
  backends.push_back(CudaBackend::Create(std::move(ops)).value());
  for (std::unique_ptr<Backend>& backend : backends) {
    Runner r;
    r.backend = std::move(backend);
    auto model = LlamaModel::Create(&config, &(*loaded)->weights, r.backend.get());
    ASSERT_TRUE(model.ok()) << model.status();
    r.model = std::move(*model);
    KvCacheConfig kc = KvConfigFor(config, KvDtype::kF16);
    kc.num_blocks = 4;
    r.kv = KvCache::Create(kc, r.backend.get()).value();
    runners.push_back(std::move(r));
  }
  ForwardBatch b;
  b.n_seqs = 1;
  b.max_blocks_per_seq = 3;
  b.block_tables = {2, 1, 3};
  b.tokens = (*loaded)->tokenizer->Encode(
      "Once upon a time, in a small village by the sea, there lived an old fisherman who", true, false);
  ASSERT_GE(b.tokens.size(), 16u);
  for (size_t i = 0; i < b.tokens.size(); ++i) {
    b.positions.push_back(static_cast<int32_t>(i));
    b.token_seq.push_back(0);
  }
  b.logit_rows = {static_cast<int32_t>(b.tokens.size()) - 1};
  for (int step = 0; step < 4; ++step) {
    std::vector<float> want, got;
    ASSERT_TRUE(runners[0].model->Forward(b, runners[0].kv.get(), &want).ok());
    const absl::Status s = runners[1].model->Forward(b, runners[1].kv.get(), &got);
    ASSERT_TRUE(s.ok()) << s;
    ExpectLogitsAgree(want, got, config.vocab_size, 0.04f, "step " + std::to_string(step));
    const int32_t next = static_cast<int32_t>(std::max_element(want.begin(), want.end()) - want.begin());
    const int32_t pos = b.positions.back() + 1;
    b.tokens = {next};
    b.positions = {pos};
    b.token_seq = {0};
    b.logit_rows = {0};
  }
  EXPECT_EQ(host_ops->launches().at("PrefillAttention"), config.n_layers);
  EXPECT_EQ(host_ops->launches().at("GraphLaunch"), 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(180));  // ~18 s here
}

TEST(CudaBackendOnHarnessMemory, ReportsTheDeviceAndRunsOutOfMemoryWithAClearError) {
  HostKernelOpsConfig config;
  config.total_bytes = 1 << 20;
  auto backend = CudaBackend::Create(std::make_unique<HostKernelOps>(config)).value();
  EXPECT_EQ(backend->device().ToString(), "cuda:0");
  EXPECT_FALSE(backend->host_memory());
  auto a = backend->Allocate(512 << 10);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(backend->MemoryInfo()->free_bytes, 512 << 10);
  auto b = backend->Allocate(768 << 10);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("786432"), std::string::npos) << b.status();
  a->Reset();
  EXPECT_EQ(backend->MemoryInfo()->free_bytes, 1 << 20);
}

TEST(CudaBackendOnHarnessMemory, MatMulRejectsAHostOnlyWeightType) {
  auto backend = CudaBackend::Create(std::make_unique<HostKernelOps>()).value();
  std::vector<float> w(64 * 32, 1.0f), x(32, 1.0f), y(64);
  MatMulParams p;
  p.weight_type = TensorType::kF32;  // PrepareWeights would have made it BF16
  p.weight = w.data();
  p.rows = 64;
  p.cols = 32;
  p.input = x.data();
  p.tokens = 1;
  p.output = y.data();
  const absl::Status s = backend->MatMul(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("F32"), std::string::npos) << s;
}

}  // namespace
}  // namespace strata
