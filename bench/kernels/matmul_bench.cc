// Matmul benchmarks on the default model's shapes (SmolLM2-135M: d_model 576,
// ffn 1536, q/o 576x576, k/v 192x576, 49152x576 Q8_0 LM head), reporting
// weight bytes read per second (counter `wGB/s`, 1 GB = 1e9 B), next to a
// STREAM-like read bandwidth so the kernels can be quoted as a fraction of it.
//
// Weights are "cold" as in a real decode step: each benchmark cycles over
// enough copies of the matrix (>= 192 MB in all, well past the 32 MB L3) that
// every call streams its weights from DRAM.
//
//   build-kernels/bin/matmul_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one line)
// STRATA_SIMD=avx2|scalar caps the SIMD level as for the service.
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"

namespace strata {
namespace {

constexpr int64_t kColdBytes = int64_t{192} << 20;

ThreadPool* Pool(int threads) {
  static std::unique_ptr<ThreadPool> pools[3];
  if (!pools[threads]) pools[threads] = *ThreadPool::Create(threads);
  return pools[threads].get();
}

// Random valid weights: random bytes with sane f16 scales (the benchmark
// only needs realistic memory traffic and no NaN slow paths).
std::vector<uint8_t> RandomWeights(TensorType type, int64_t rows, int64_t cols, int copies) {
  const int64_t row_bytes = *RowBytes(type, cols);
  std::vector<uint8_t> w(static_cast<size_t>(row_bytes * rows * copies));
  std::mt19937 rng(42);
  if (type == TensorType::kF16 || type == TensorType::kBF16 || type == TensorType::kF32) {
    const int64_t n = rows * cols * copies;
    uint32_t x = 12345;
    for (int64_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      const float v = (static_cast<float>(x >> 8) * (1.0f / 16777216.0f) - 0.5f) * 0.2f;
      if (type == TensorType::kF32) {
        std::memcpy(w.data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = type == TensorType::kF16 ? F32ToF16(v) : BitsFromF32(v) >> 16;
        std::memcpy(w.data() + 2 * i, &h, 2);
      }
    }
    return w;
  }
  uint64_t x = 0x9E3779B97F4A7C15ull;  // xorshift64: 192 MB in well under a second
  for (size_t i = 0; i + 8 <= w.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(w.data() + i, &x, 8);
  }
  const int64_t bb = BlockBytes(type), nblocks = static_cast<int64_t>(w.size()) / bb;
  const int off = type == TensorType::kQ6_K ? 208 : 0;
  const uint16_t d = F32ToF16(0.01f);
  for (int64_t b = 0; b < nblocks; ++b) {
    std::memcpy(w.data() + b * bb + off, &d, 2);
    if (type == TensorType::kQ4_1 || type == TensorType::kQ4_K || type == TensorType::kQ5_K) {
      std::memcpy(w.data() + b * bb + 2, &d, 2);
    }
  }
  return w;
}

// args: rows, cols, tokens, threads
void BM_MatMulImpl(benchmark::State& state, TensorType type, bool cold) {
  const int64_t rows = state.range(0), cols = state.range(1), tokens = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const int64_t matrix_bytes = *RowBytes(type, cols) * rows;
  const int copies = cold ? static_cast<int>(std::max<int64_t>(1, kColdBytes / matrix_bytes)) : 1;
  const std::vector<uint8_t> w = RandomWeights(type, rows, cols, copies);
  std::vector<float> in(static_cast<size_t>(tokens * cols)), out(static_cast<size_t>(tokens * rows));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& x : in) x = u(rng);
  MatMulParams p;
  p.weight_type = type;
  p.rows = rows;
  p.cols = cols;
  p.input = in.data();
  p.tokens = tokens;
  p.output = out.data();
  p.pool = Pool(threads);
  int copy = 0;
  for (auto _ : state) {
    p.weight = w.data() + copy * matrix_bytes;
    copy = copy + 1 == copies ? 0 : copy + 1;
    const absl::Status s = LaunchMatMul(p);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["wGB/s"] = benchmark::Counter(static_cast<double>(matrix_bytes) / 1e9,
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * tokens / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(SimdLevelName(DetectedSimdLevel())));
}

void BM_MatMul(benchmark::State& state, TensorType type) { BM_MatMulImpl(state, type, true); }
// Weights resident in L2: the kernel's compute ceiling, no DRAM traffic.
void BM_MatMulWarm(benchmark::State& state, TensorType type) { BM_MatMulImpl(state, type, false); }

// The model's projection shapes (rows x cols), tokens, threads.
void ModelShapes(benchmark::internal::Benchmark* b, bool only_256_cols) {
  const int64_t shapes[][2] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}};
  for (int64_t tokens : {1, 64}) {
    for (const auto& s : shapes) {
      if (only_256_cols && s[1] % 256 != 0) continue;
      for (int threads : {1, 2}) b->Args({s[0], s[1], tokens, threads});
    }
  }
  b->ArgNames({"rows", "cols", "tok", "thr"})->UseRealTime();
}

BENCHMARK_CAPTURE(BM_MatMul, Q4_1, TensorType::kQ4_1)->Apply([](auto* b) { ModelShapes(b, false); });
BENCHMARK_CAPTURE(BM_MatMul, Q8_0, TensorType::kQ8_0)->Apply([](auto* b) { ModelShapes(b, false); });
BENCHMARK_CAPTURE(BM_MatMul, F16, TensorType::kF16)->Apply([](auto* b) { ModelShapes(b, false); });
// Q4_K needs cols % 256 == 0: only the FFN down projection (576 x 1536) fits
// this model; real Q4_K files fall back to other types for 576-wide rows.
BENCHMARK_CAPTURE(BM_MatMul, Q4_K, TensorType::kQ4_K)->Apply([](auto* b) { ModelShapes(b, true); });
BENCHMARK_CAPTURE(BM_MatMulWarm, Q4_1, TensorType::kQ4_1)
    ->ArgNames({"rows", "cols", "tok", "thr"})->Args({576, 576, 1, 1})->Args({576, 576, 64, 1});
BENCHMARK_CAPTURE(BM_MatMulWarm, Q8_0, TensorType::kQ8_0)
    ->ArgNames({"rows", "cols", "tok", "thr"})->Args({576, 576, 1, 1})->Args({576, 576, 64, 1});
BENCHMARK_CAPTURE(BM_MatMulWarm, F16, TensorType::kF16)
    ->ArgNames({"rows", "cols", "tok", "thr"})->Args({576, 576, 1, 1})->Args({576, 576, 64, 1});
BENCHMARK_CAPTURE(BM_MatMulWarm, Q4_K, TensorType::kQ4_K)
    ->ArgNames({"rows", "cols", "tok", "thr"})->Args({576, 1536, 1, 1})->Args({576, 1536, 64, 1});
// LM head: 49152 x 576 Q8_0 (the tied embedding).
BENCHMARK_CAPTURE(BM_MatMul, Q8_0_lm_head, TensorType::kQ8_0)
    ->ArgNames({"rows", "cols", "tok", "thr"})
    ->Args({49152, 576, 1, 1})
    ->Args({49152, 576, 1, 2})
    ->UseRealTime();

// One decode step's matmuls of the whole model (30 layers of Q4_1 q,k,v,o,
// gate,up,down + the Q8_0 LM head), each layer's weights distinct and cold:
// the number to compare with llama.cpp's decode (tokens/s = items/s).
void BM_ModelDecodeMatMuls(benchmark::State& state, TensorType layer_type) {
  const int threads = static_cast<int>(state.range(0));
  constexpr int kLayers = 30;
  const int64_t shapes[][2] = {{576, 576},  {192, 576},  {192, 576}, {576, 576},
                               {1536, 576}, {1536, 576}, {576, 1536}};
  struct Mat {
    TensorType type;
    int64_t rows, cols, offset;
  };
  std::vector<Mat> mats;
  int64_t total = 0;
  for (int l = 0; l < kLayers; ++l) {
    for (const auto& s : shapes) {
      mats.push_back({layer_type, s[0], s[1], total});
      total += *RowBytes(layer_type, s[1]) * s[0];
    }
  }
  const int64_t layer_bytes = total;
  const int64_t head_bytes = *RowBytes(TensorType::kQ8_0, 576) * 49152;
  const std::vector<uint8_t> layers = RandomWeights(layer_type, layer_bytes / *RowBytes(layer_type, 576), 576, 1);
  const std::vector<uint8_t> head = RandomWeights(TensorType::kQ8_0, 49152, 576, 1);
  std::vector<float> in(1536, 0.5f), out(49152);
  for (size_t i = 0; i < in.size(); ++i) in[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
  MatMulParams p;
  p.tokens = 1;
  p.input = in.data();
  p.output = out.data();
  p.pool = Pool(threads);
  for (auto _ : state) {
    for (const Mat& m : mats) {
      p.weight_type = m.type;
      p.weight = layers.data() + m.offset;
      p.rows = m.rows;
      p.cols = m.cols;
      (void)LaunchMatMul(p);
    }
    p.weight_type = TensorType::kQ8_0;
    p.weight = head.data();
    p.rows = 49152;
    p.cols = 576;
    (void)LaunchMatMul(p);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["wGB/s"] = benchmark::Counter(static_cast<double>(layer_bytes + head_bytes) / 1e9,
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.SetItemsProcessed(state.iterations());  // tokens
  state.SetLabel(std::string(SimdLevelName(DetectedSimdLevel())));
}
BENCHMARK_CAPTURE(BM_ModelDecodeMatMuls, Q4_1, TensorType::kQ4_1)
    ->ArgName("thr")->Arg(1)->Arg(2)->UseRealTime();

// Cost of one ThreadPool::ParallelFor with trivial work (wake + join): the
// fixed price every parallel matmul pays, which decode's small matmuls feel.
void BM_ParallelForOverhead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  std::vector<int64_t> sink(threads * 16);
  for (auto _ : state) {
    Pool(threads)->ParallelFor(1024, 16, [&](int64_t b, int64_t e, int t) { sink[t * 16] += e - b; });
  }
  benchmark::DoNotOptimize(sink.data());
}
BENCHMARK(BM_ParallelForOverhead)->ArgName("thr")->Arg(1)->Arg(2)->UseRealTime();

// STREAM-like bandwidth over 512 MB: read (sum of 64-bit words, what a
// decode matmul does) and copy (memcpy; counts read + write bytes).
constexpr int64_t kStreamBytes = int64_t{512} << 20;

void BM_StreamRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  std::vector<uint64_t> a(kStreamBytes / 8, 1);
  std::vector<uint64_t> partial(threads);
  for (auto _ : state) {
    Pool(threads)->ParallelFor(static_cast<int64_t>(a.size()), 4096, [&](int64_t b, int64_t e, int t) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
      }
      for (; i < e; ++i) s0 += a[i];
      partial[t] = s0 + s1 + s2 + s3;
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kStreamBytes) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_StreamRead)->ArgName("thr")->Arg(1)->Arg(2)->UseRealTime();

void BM_StreamCopy(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  std::vector<uint8_t> a(kStreamBytes / 2, 1), b(kStreamBytes / 2);
  for (auto _ : state) {
    Pool(threads)->ParallelFor(static_cast<int64_t>(a.size()), 1 << 16, [&](int64_t lo, int64_t hi, int) {
      std::memcpy(b.data() + lo, a.data() + lo, static_cast<size_t>(hi - lo));
    });
    benchmark::DoNotOptimize(b.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kStreamBytes) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_StreamCopy)->ArgName("thr")->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
}  // namespace strata

BENCHMARK_MAIN();
