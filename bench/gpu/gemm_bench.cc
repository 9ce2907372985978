// GPU GEMM benchmark (one run, one JSON object per line on stdout):
//   {"bench":"copy_bandwidth","gbps":..}        cudaMemcpyAsync D2D of 1 GiB, 2*bytes/time
//   {"bench":"gemm","dtype":"bf16"|"fp8_tensor"|"fp8_channel","m":..,"n":..,"k":..,"ms":..,"tflops":..}
//                                               cuBLASLt via CublasLtGemm, BF16 output,
//                                               2*m*n*k/time (FP8 per channel includes
//                                               the column epilogue kernel)
//   {"bench":"qgemv","quant":"q8_0"|"q4_0","m":..,"n":..,"k":..,"us":..,"gbps":..,"pct_copy_bw":..}
//                                               weight-only GEMV, weight bytes/time, and
//                                               that as % of the measured copy bandwidth
// Every number is the median of 20 timed iterations (CUDA events) after 5 warm-up
// runs. Without a CUDA device: "no CUDA device" on stderr, exit 2.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cuda/gemm/cublaslt_gemm.h"
#include "kernels/cuda/gemm/launchers.h"

namespace strata::cuda {
namespace {

constexpr int kWarmup = 5;
constexpr int kIters = 20;

#define BENCH_CHECK(expr)                                                          \
  do {                                                                             \
    cudaError_t _e = (expr);                                                       \
    if (_e != cudaSuccess) {                                                       \
      std::fprintf(stderr, "%s failed: %s\n", #expr, cudaGetErrorString(_e));      \
      return false;                                                                \
    }                                                                              \
  } while (0)

// Median milliseconds of `fn` (which enqueues work on `stream`); false on error.
bool MedianMs(cudaStream_t stream, const std::function<bool()>& fn, double* ms) {
  for (int i = 0; i < kWarmup; ++i) {
    if (!fn()) return false;
  }
  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int i = 0; i < kIters; ++i) {
    BENCH_CHECK(cudaEventRecord(start, stream));
    if (!fn()) return false;
    BENCH_CHECK(cudaEventRecord(stop, stream));
    BENCH_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    BENCH_CHECK(cudaEventElapsedTime(&t, start, stop));
    times.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  *ms = (times[kIters / 2 - 1] + times[kIters / 2]) / 2;
  return true;
}

struct DeviceMem {
  void* p = nullptr;
  ~DeviceMem() { cudaFree(p); }
};

bool Upload(DeviceMem* d, const void* host, size_t bytes) {
  BENCH_CHECK(cudaMalloc(&d->p, bytes));
  BENCH_CHECK(cudaMemcpy(d->p, host, bytes, cudaMemcpyHostToDevice));
  return true;
}

bool CopyBandwidth(cudaStream_t stream, double* gbps) {
  const size_t bytes = size_t{1} << 30;
  DeviceMem a, b;
  BENCH_CHECK(cudaMalloc(&a.p, bytes));
  BENCH_CHECK(cudaMalloc(&b.p, bytes));
  BENCH_CHECK(cudaMemset(a.p, 1, bytes));
  double ms = 0;
  if (!MedianMs(stream, [&] { return cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, stream) ==
                                     cudaSuccess; },
                &ms)) {
    return false;
  }
  *gbps = 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
  std::printf("{\"bench\":\"copy_bandwidth\",\"bytes\":%zu,\"ms\":%.4f,\"gbps\":%.1f}\n", bytes, ms, *gbps);
  return true;
}

bool Gemm(CublasLtGemm* gemm, cudaStream_t stream, const char* name, int64_t m, int64_t n, int64_t k) {
  const bool fp8 = std::strncmp(name, "fp8", 3) == 0;
  const bool per_channel = std::strcmp(name, "fp8_channel") == 0;
  const size_t elem = fp8 ? 1 : 2;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  // One random host pattern of 1 Mi elements, repeated (filling 64 Mi elements
  // element by element would dominate the run).
  const size_t pattern = size_t{1} << 20;
  std::vector<uint8_t> pat(pattern * elem);
  for (size_t i = 0; i < pattern; ++i) {
    if (fp8) {
      pat[i] = F32ToE4M3(u(rng) * 400.0f);
    } else {
      const uint16_t b = F32ToBF16(u(rng));
      std::memcpy(&pat[i * 2], &b, 2);
    }
  }
  auto fill = [&](int64_t rows, int64_t cols, DeviceMem* d) {
    const size_t bytes = static_cast<size_t>(rows * cols) * elem;
    std::vector<uint8_t> h(bytes);
    for (size_t off = 0; off < bytes; off += pat.size()) {
      std::memcpy(h.data() + off, pat.data(), std::min(pat.size(), bytes - off));
    }
    return Upload(d, h.data(), bytes);
  };
  DeviceMem w, x, y, ws, xs;
  if (!fill(n, k, &w) || !fill(m, k, &x)) return false;
  BENCH_CHECK(cudaMalloc(&y.p, static_cast<size_t>(m * n) * 2));
  const std::vector<float> w_scale(per_channel ? n : 1, 1.0f / 448.0f), x_scale(1, 1.0f / 448.0f);
  if (fp8 && (!Upload(&ws, w_scale.data(), w_scale.size() * 4) || !Upload(&xs, x_scale.data(), 4))) {
    return false;
  }
  GemmRequest req;
  req.shape = {m, n, k};
  req.w_dtype = req.x_dtype = fp8 ? GemmDtype::kFp8E4M3 : GemmDtype::kBF16;
  req.y_dtype = GemmDtype::kBF16;
  req.scale_mode = !fp8 ? Fp8ScaleMode::kNone : per_channel ? Fp8ScaleMode::kPerChannel : Fp8ScaleMode::kPerTensor;
  req.sm = gemm->sm();
  absl::StatusOr<CublasLtGemmPlan> plan = PlanGemm(req);
  if (!plan.ok()) {
    std::fprintf(stderr, "%s %ldx%ldx%ld: %s\n", name, static_cast<long>(m), static_cast<long>(n),
                 static_cast<long>(k), plan.status().ToString().c_str());
    return false;
  }
  const GemmOperands ops{w.p, x.p, y.p, nullptr, static_cast<const float*>(ws.p),
                         static_cast<const float*>(xs.p)};
  absl::Status status;
  double ms = 0;
  if (!MedianMs(stream, [&] { return (status = gemm->Run(*plan, ops, stream)).ok(); }, &ms)) {
    std::fprintf(stderr, "%s: %s\n", name, status.ToString().c_str());
    return false;
  }
  const double tflops = 2.0 * m * n * k / (ms * 1e-3) / 1e12;
  std::printf("{\"bench\":\"gemm\",\"dtype\":\"%s\",\"m\":%ld,\"n\":%ld,\"k\":%ld,\"ms\":%.4f,\"tflops\":%.1f}\n",
              name, static_cast<long>(m), static_cast<long>(n), static_cast<long>(k), ms, tflops);
  return true;
}

bool QGemv(cudaStream_t stream, WeightQuant q, const char* name, int64_t m, int64_t n, int64_t k,
           double copy_gbps) {
  const int64_t bb = WeightQuantBlockBytes(q);
  const int64_t stride = k / 32 * bb;
  std::mt19937 rng(2);
  std::vector<uint8_t> h(static_cast<size_t>(n * stride));
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint8_t>(rng());
  const uint16_t d = F32ToF16(0.01f);
  for (int64_t b = 0; b < n * (k / 32); ++b) std::memcpy(&h[b * bb], &d, 2);  // finite scales
  std::vector<float> hx(static_cast<size_t>(m * k), 0.5f);
  DeviceMem w, x, y;
  if (!Upload(&w, h.data(), h.size()) || !Upload(&x, hx.data(), hx.size() * 4)) return false;
  BENCH_CHECK(cudaMalloc(&y.p, static_cast<size_t>(m * n) * 4));
  const QGemvParams p{q, w.p, stride, n, k, static_cast<const float*>(x.p), k, m,
                      static_cast<float*>(y.p), n};
  double ms = 0;
  if (!MedianMs(stream, [&] { return LaunchQGemv(p, stream) == cudaSuccess; }, &ms)) return false;
  const double gbps = static_cast<double>(h.size()) / (ms * 1e-3) / 1e9;
  std::printf("{\"bench\":\"qgemv\",\"quant\":\"%s\",\"m\":%ld,\"n\":%ld,\"k\":%ld,\"us\":%.2f,\"gbps\":%.1f,"
              "\"pct_copy_bw\":%.1f}\n",
              name, static_cast<long>(m), static_cast<long>(n), static_cast<long>(k), ms * 1e3, gbps,
              100.0 * gbps / copy_gbps);
  return true;
}

int Main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<CublasLtGemm>> gemm = CublasLtGemm::Create(0, 32 << 20);
  if (!gemm.ok()) {
    std::fprintf(stderr, "CublasLtGemm::Create: %s\n", gemm.status().ToString().c_str());
    return 1;
  }
  cudaStream_t stream;
  if (cudaStreamCreate(&stream) != cudaSuccess) return 1;
  double copy_gbps = 0;
  if (!CopyBandwidth(stream, &copy_gbps)) return 1;
  const int64_t shapes[][3] = {{4096, 4096, 4096}, {8192, 8192, 8192}, {16, 8192, 8192}};
  for (const char* dtype : {"bf16", "fp8_tensor", "fp8_channel"}) {
    if (dtype[0] == 'f' && (*gemm)->sm() < 89) {
      std::fprintf(stderr, "skipping %s: sm_%d has no FP8 tensor cores\n", dtype, (*gemm)->sm());
      continue;
    }
    for (const auto& s : shapes) {
      if (!Gemm(gemm->get(), stream, dtype, s[0], s[1], s[2])) return 1;
    }
  }
  const int64_t decode[][3] = {{1, 4096, 4096}, {1, 14336, 4096}, {1, 4096, 14336}, {8, 4096, 4096}};
  for (const auto& s : decode) {
    if (!QGemv(stream, WeightQuant::kQ8_0, "q8_0", s[0], s[1], s[2], copy_gbps)) return 1;
    if (!QGemv(stream, WeightQuant::kQ4_0, "q4_0", s[0], s[1], s[2], copy_gbps)) return 1;
  }
  cudaStreamDestroy(stream);
  return 0;
}

}  // namespace
}  // namespace strata::cuda

int main() { return strata::cuda::Main(); }
