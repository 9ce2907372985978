// Prefill attention throughput on one GPU: causal prompts of 512/2048/8192 tokens,
// batch 1 and 8, 32 query heads, 8 KV heads, head_dim 128, bf16 paged KV (block 16).
// One JSON object per line on stdout:
//   {"bench":"prefill_attention","batch":8,"prompt":2048,...,"us":...,"tflops":...}
// us = median of 20 timed launches (CUDA events) after 3 warm-ups; tflops counts the
// causal half of the two GEMMs: 4 * L^2 * head_dim * n_heads / 2 per sequence.
// Without a GPU: "no CUDA device" on stderr, exit 2.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/cuda/prefill/launchers.h"
#include "kernels/cuda/prefill/prefill_plan.h"

namespace {

#define BENCH_CHECK(expr)                                                                  \
  do {                                                                                     \
    const cudaError_t err_ = (expr);                                                       \
    if (err_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s failed: %s\n", #expr, cudaGetErrorString(err_));            \
      return false;                                                                        \
    }                                                                                      \
  } while (0)

__global__ void FillBf16(uint16_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    const float f = (static_cast<float>(h & 0xFFFF) / 65535.0f - 0.5f) * 2.0f;
    p[i] = static_cast<uint16_t>(__float_as_uint(f) >> 16);
  }
}

__global__ void FillF32(float* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = (static_cast<float>(h & 0xFFFF) / 65535.0f - 0.5f) * 2.0f;
  }
}

bool RunOne(int batch, int prompt) {
  using namespace strata;
  using namespace strata::cuda;
  constexpr int kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlock = 16;
  const int max_blocks = (prompt + kBlock - 1) / kBlock;
  const int num_blocks = batch * max_blocks + 1;
  std::vector<int32_t> tables(static_cast<size_t>(batch) * max_blocks), seq, pos;
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i) + 1;
  for (int s = 0; s < batch; ++s) {
    for (int t = 0; t < prompt; ++t) {
      seq.push_back(s);
      pos.push_back(t);
    }
  }
  PrefillPlan plan;
  if (const char* why = BuildPrefillPlan(seq.data(), pos.data(), static_cast<int64_t>(seq.size()), batch, kHeads,
                                         kKvHeads, &plan)) {
    std::fprintf(stderr, "plan: %s\n", why);
    return false;
  }
  const int64_t tokens = static_cast<int64_t>(seq.size());
  const int64_t pool = static_cast<int64_t>(num_blocks) * kKvHeads * kBlock * kHeadDim;
  const int64_t qn = tokens * kHeads * kHeadDim;
  uint16_t *k = nullptr, *v = nullptr;
  float *q = nullptr, *out = nullptr;
  int32_t *dtab = nullptr, *dqs = nullptr, *dpos0 = nullptr, *dts = nullptr;
  int* dbad = nullptr;
  BENCH_CHECK(cudaMalloc(&k, pool * 2));
  BENCH_CHECK(cudaMalloc(&v, pool * 2));
  BENCH_CHECK(cudaMalloc(&q, qn * 4));
  BENCH_CHECK(cudaMalloc(&out, qn * 4));
  BENCH_CHECK(cudaMalloc(&dtab, tables.size() * 4));
  BENCH_CHECK(cudaMalloc(&dqs, plan.q_start.size() * 4));
  BENCH_CHECK(cudaMalloc(&dpos0, plan.q_pos0.size() * 4));
  BENCH_CHECK(cudaMalloc(&dts, plan.tile_start.size() * 4));
  BENCH_CHECK(cudaMalloc(&dbad, 4));
  BENCH_CHECK(cudaMemset(dbad, 0, 4));
  BENCH_CHECK(cudaMemcpy(dtab, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
  BENCH_CHECK(cudaMemcpy(dqs, plan.q_start.data(), plan.q_start.size() * 4, cudaMemcpyHostToDevice));
  BENCH_CHECK(cudaMemcpy(dpos0, plan.q_pos0.data(), plan.q_pos0.size() * 4, cudaMemcpyHostToDevice));
  BENCH_CHECK(cudaMemcpy(dts, plan.tile_start.data(), plan.tile_start.size() * 4, cudaMemcpyHostToDevice));
  FillBf16<<<1024, 256>>>(k, pool, 1);
  FillBf16<<<1024, 256>>>(v, pool, 2);
  FillF32<<<1024, 256>>>(q, qn, 3);
  BENCH_CHECK(cudaGetLastError());

  PrefillAttentionParams p;
  p.kv.k = k;
  p.kv.v = v;
  p.kv.dtype = KvDtype::kBF16;
  p.kv.num_blocks = num_blocks;
  p.kv.block_size = kBlock;
  p.kv.n_kv_heads = kKvHeads;
  p.kv.head_dim = kHeadDim;
  p.kv.block_tables = dtab;
  p.kv.max_blocks_per_seq = max_blocks;
  p.kv.n_seqs = batch;
  p.q = q;
  p.q_stride = kHeads * kHeadDim;
  p.out = out;
  p.out_stride = p.q_stride;
  p.n_heads = kHeads;
  p.scale = 0.08838834764831845f;  // 1/sqrt(128)
  p.q_start = dqs;
  p.q_pos0 = dpos0;
  p.tile_start = dts;
  p.n_tiles = plan.n_tiles;
  p.plan_group = plan.group;
  p.bad_blocks = dbad;

  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) BENCH_CHECK(LaunchPrefillAttention(p, nullptr));
  BENCH_CHECK(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int i = 0; i < 20; ++i) {
    BENCH_CHECK(cudaEventRecord(start));
    BENCH_CHECK(LaunchPrefillAttention(p, nullptr));
    BENCH_CHECK(cudaEventRecord(stop));
    BENCH_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    BENCH_CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double us = 1000.0 * 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  int bad = 0;
  BENCH_CHECK(cudaMemcpy(&bad, dbad, 4, cudaMemcpyDeviceToHost));
  const double flops = 4.0 * prompt * static_cast<double>(prompt) * kHeadDim * kHeads / 2.0 * batch;
  std::printf(
      "{\"bench\":\"prefill_attention\",\"batch\":%d,\"prompt\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
      "\"head_dim\":%d,\"kv_dtype\":\"bf16\",\"us\":%.1f,\"tflops\":%.2f,\"bad_blocks\":%d}\n",
      batch, prompt, kHeads, kKvHeads, kHeadDim, us, flops / (us * 1e-6) / 1e12, bad);
  std::fflush(stdout);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(k);
  cudaFree(v);
  cudaFree(q);
  cudaFree(out);
  cudaFree(dtab);
  cudaFree(dqs);
  cudaFree(dpos0);
  cudaFree(dts);
  cudaFree(dbad);
  return true;
}

}  // namespace

int main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  for (int batch : {1, 8}) {
    for (int prompt : {512, 2048, 8192}) {
      if (!RunOne(batch, prompt)) return 1;
    }
  }
  return 0;
}
