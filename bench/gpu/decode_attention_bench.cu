// Paged decode attention on the GPU: achieved bandwidth against the device copy
// bandwidth of the same run.
//
//   decode_attention_bench [--iters N]
//
// Shapes: batch {1, 16, 64} x context {1024, 4096, 16384, 32768}, head_dim 128,
// 32 query heads over 8 KV heads (GQA 4), block size 16, KV dtypes bf16 and fp8
// (E4M3 with row scales); a combination that does not fit in free device memory
// is skipped (a "skipped" line says so). Every sequence is at the same context and
// decodes one token; its blocks are a random permutation of the pool, as after
// paging churn. The partition size comes from SuggestDecodePartitionTokens.
//
// One JSON object per line on stdout:
//   {"bench":"copy_bandwidth","bytes":1073741824,"us":...,"gbps":...}
//     cudaMemcpyAsync device-to-device of 1 GiB, gbps = 2 * bytes / time (read +
//     write, as nvbandwidth / bandwidthTest count it).
//   {"bench":"decode_attention","batch":64,"context":32768,"kv_dtype":"bf16",
//    "partition":512,"us":...,"gbps":...,"copy_fraction":...}
//     gbps = bytes of K + V (+ their scales) read / time; copy_fraction = gbps /
//     copy gbps (the target: >= 0.8 at long contexts).
// Times are medians of --iters (default 30, at least 20) timed launches after 3
// warm-up launches, each timed alone with CUDA events; L2 is flushed (a 256 MiB
// memset) before each timed launch. Without a CUDA device: "no CUDA device" on
// stderr, exit 2.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/attention/launchers.h"

namespace strata::cuda {
namespace {

#define BENCH_CHECK(expr)                                                                     \
  do {                                                                                        \
    const cudaError_t bench_err_ = (expr);                                                    \
    if (bench_err_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                      \
                   cudaGetErrorString(bench_err_));                                           \
      return false;                                                                           \
    }                                                                                         \
  } while (0)

__device__ __forceinline__ uint32_t Hash(uint64_t i) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return static_cast<uint32_t>(x);
}

// Fills `bytes` of a pool with finite codes of `dtype` (bf16 values in (-1, 1);
// E4M3 codes without the NaN pattern).
__global__ void FillPool(uint8_t* pool, size_t bytes, KvDtype dtype, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  if (dtype == KvDtype::kBF16) {
    uint16_t* p = reinterpret_cast<uint16_t*>(pool);
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < bytes / 2; i += stride) {
      const float x = static_cast<float>(Hash(seed + i) & 0xFFFFu) / 32768.0f - 1.0f;
      p[i] = KvF32ToBF16(x);
    }
  } else {
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < bytes; i += stride) {
      pool[i] = static_cast<uint8_t>(Hash(seed + i) & 0xF7u);  // exponent <= 14: never NaN
    }
  }
}

__global__ void FillF32(float* p, size_t n, float lo, float hi, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    p[i] = lo + (hi - lo) * static_cast<float>(Hash(seed + i) & 0xFFFFu) / 65536.0f;
  }
}

struct Timer {
  cudaEvent_t start = nullptr, stop = nullptr;
  Timer() {
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
  }
  ~Timer() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool CopyBandwidth(int iters, double* gbps) {
  const size_t bytes = size_t{1} << 30;
  void* a = nullptr;
  void* b = nullptr;
  BENCH_CHECK(cudaMalloc(&a, bytes));
  BENCH_CHECK(cudaMalloc(&b, bytes));
  BENCH_CHECK(cudaMemset(a, 1, bytes));
  Timer t;
  std::vector<double> us;
  for (int i = 0; i < iters + 3; ++i) {
    BENCH_CHECK(cudaEventRecord(t.start));
    BENCH_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
    BENCH_CHECK(cudaEventRecord(t.stop));
    BENCH_CHECK(cudaEventSynchronize(t.stop));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, t.start, t.stop));
    if (i >= 3) us.push_back(1e3 * ms);
  }
  cudaFree(a);
  cudaFree(b);
  const double med = Median(us);
  *gbps = 2.0 * static_cast<double>(bytes) / (med * 1e-6) / 1e9;
  std::printf("{\"bench\":\"copy_bandwidth\",\"bytes\":%zu,\"us\":%.1f,\"gbps\":%.1f}\n", bytes, med, *gbps);
  std::fflush(stdout);
  return true;
}

struct Shape {
  int32_t batch, context;
  KvDtype dtype;
};

bool RunDecode(const Shape& s, int iters, int sm_count, double copy_gbps, void* flush, size_t flush_bytes) {
  const int32_t head_dim = 128, n_heads = 32, n_kv = 8, block_size = 16;
  const int32_t blocks_per_seq = (s.context + block_size - 1) / block_size;
  const int32_t num_blocks = s.batch * blocks_per_seq + 1;  // + the null block
  KvPoolBytes pool;
  if (!ComputeKvPoolBytes(s.dtype, num_blocks, n_kv, block_size, head_dim, &pool)) return false;

  DecodeAttentionParams p;
  p.tokens = s.batch;
  p.n_heads = n_heads;
  p.q_stride = static_cast<int64_t>(n_heads) * head_dim;
  p.scale = 1.0f / 11.3137085f;
  p.max_context = s.context;
  p.partition_tokens = SuggestDecodePartitionTokens(s.batch, n_kv, s.context, sm_count);
  p.kv.dtype = s.dtype;
  p.kv.head_dim = head_dim;
  const size_t ws_bytes = DecodeAttentionWorkspaceBytes(p);
  const size_t need = 2 * static_cast<size_t>(pool.data + pool.scales) + ws_bytes + (size_t{64} << 20);
  size_t free_bytes = 0, total_bytes = 0;
  BENCH_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (need > free_bytes * 9 / 10) {
    std::printf("{\"bench\":\"decode_attention\",\"batch\":%d,\"context\":%d,\"kv_dtype\":\"%s\",\"skipped\":"
                "\"needs %zu bytes, %zu free\"}\n",
                s.batch, s.context, KvDtypeName(s.dtype), need, free_bytes);
    return true;
  }

  // Block tables: a random permutation of [1, num_blocks).
  std::vector<int32_t> ids(num_blocks - 1);
  std::iota(ids.begin(), ids.end(), 1);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(s.batch * 131 + s.context));
  std::vector<int32_t> seq(s.batch), pos(s.batch, s.context - 1);
  std::iota(seq.begin(), seq.end(), 0);

  uint8_t *k = nullptr, *v = nullptr;
  float *ks = nullptr, *vs = nullptr, *q = nullptr, *out = nullptr;
  int32_t *tables = nullptr, *dseq = nullptr, *dpos = nullptr;
  int* bad = nullptr;
  void* ws = nullptr;
  bool ok = [&]() {
    BENCH_CHECK(cudaMalloc(&k, pool.data));
    BENCH_CHECK(cudaMalloc(&v, pool.data));
    if (pool.scales) {
      BENCH_CHECK(cudaMalloc(&ks, pool.scales));
      BENCH_CHECK(cudaMalloc(&vs, pool.scales));
      FillF32<<<1024, 256>>>(ks, pool.scales / 4, 0.001f, 0.01f, 3);
      FillF32<<<1024, 256>>>(vs, pool.scales / 4, 0.001f, 0.01f, 4);
    }
    FillPool<<<4096, 256>>>(k, pool.data, s.dtype, 1);
    FillPool<<<4096, 256>>>(v, pool.data, s.dtype, 2);
    BENCH_CHECK(cudaMalloc(&tables, ids.size() * sizeof(int32_t)));
    BENCH_CHECK(cudaMemcpy(tables, ids.data(), ids.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    BENCH_CHECK(cudaMalloc(&dseq, seq.size() * sizeof(int32_t)));
    BENCH_CHECK(cudaMemcpy(dseq, seq.data(), seq.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    BENCH_CHECK(cudaMalloc(&dpos, pos.size() * sizeof(int32_t)));
    BENCH_CHECK(cudaMemcpy(dpos, pos.data(), pos.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    BENCH_CHECK(cudaMalloc(&q, p.q_stride * s.batch * sizeof(float)));
    FillF32<<<64, 256>>>(q, p.q_stride * s.batch, -1.0f, 1.0f, 5);
    BENCH_CHECK(cudaMalloc(&out, p.q_stride * s.batch * sizeof(float)));
    BENCH_CHECK(cudaMalloc(&bad, sizeof(int)));
    BENCH_CHECK(cudaMemset(bad, 0, sizeof(int)));
    if (ws_bytes) BENCH_CHECK(cudaMalloc(&ws, ws_bytes));
    BENCH_CHECK(cudaGetLastError());

    p.kv.k = k;
    p.kv.v = v;
    p.kv.k_scale = ks;
    p.kv.v_scale = vs;
    p.kv.num_blocks = num_blocks;
    p.kv.block_size = block_size;
    p.kv.n_kv_heads = n_kv;
    p.kv.block_tables = tables;
    p.kv.max_blocks_per_seq = blocks_per_seq;
    p.kv.n_seqs = s.batch;
    p.q = q;
    p.out = out;
    p.token_seq = dseq;
    p.positions = dpos;
    p.workspace = ws;
    p.bad_tokens = bad;

    Timer t;
    std::vector<double> us;
    for (int i = 0; i < iters + 3; ++i) {
      BENCH_CHECK(cudaMemsetAsync(flush, i & 0xFF, flush_bytes));  // evict K/V from L2
      BENCH_CHECK(cudaEventRecord(t.start));
      BENCH_CHECK(LaunchDecodeAttention(p, nullptr));
      BENCH_CHECK(cudaEventRecord(t.stop));
      BENCH_CHECK(cudaEventSynchronize(t.stop));
      float ms = 0;
      BENCH_CHECK(cudaEventElapsedTime(&ms, t.start, t.stop));
      if (i >= 3) us.push_back(1e3 * ms);
    }
    int bad_host = 0;
    BENCH_CHECK(cudaMemcpy(&bad_host, bad, sizeof(int), cudaMemcpyDeviceToHost));
    if (bad_host != 0) {
      std::fprintf(stderr, "decode attention counted %d bad tokens\n", bad_host);
      return false;
    }
    const double med = Median(us);
    // Bytes read: every sequence reads `context` rows of K and V per KV head.
    const double rows = static_cast<double>(s.batch) * s.context * n_kv;
    const double bytes = 2.0 * rows * (head_dim * KvDtypeBytes(s.dtype) + (pool.scales ? 4 : 0));
    const double gbps = bytes / (med * 1e-6) / 1e9;
    std::printf("{\"bench\":\"decode_attention\",\"batch\":%d,\"context\":%d,\"kv_dtype\":\"%s\",\"partition\":%d,"
                "\"us\":%.1f,\"gbps\":%.1f,\"copy_fraction\":%.3f}\n",
                s.batch, s.context, KvDtypeName(s.dtype), p.partition_tokens, med, gbps, gbps / copy_gbps);
    std::fflush(stdout);
    return true;
  }();
  cudaFree(k);
  cudaFree(v);
  cudaFree(ks);
  cudaFree(vs);
  cudaFree(tables);
  cudaFree(dseq);
  cudaFree(dpos);
  cudaFree(q);
  cudaFree(out);
  cudaFree(bad);
  cudaFree(ws);
  return ok;
}

int Main(int argc, char** argv) {
  int iters = 30;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iters = std::max(20, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--iters N]\n", argv[0]);
      return 1;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  int sm_count = 0;
  if (cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess) return 1;
  double copy_gbps = 0;
  if (!CopyBandwidth(iters, &copy_gbps)) return 1;
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  if (cudaMalloc(&flush, flush_bytes) != cudaSuccess) return 1;
  bool ok = true;
  for (KvDtype dtype : {KvDtype::kBF16, KvDtype::kFp8E4M3}) {
    for (int32_t batch : {1, 16, 64}) {
      for (int32_t context : {1024, 4096, 16384, 32768}) {
        ok &= RunDecode({batch, context, dtype}, iters, sm_count, copy_gbps, flush, flush_bytes);
      }
    }
  }
  cudaFree(flush);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace strata::cuda

int main(int argc, char** argv) { return strata::cuda::Main(argc, argv); }
