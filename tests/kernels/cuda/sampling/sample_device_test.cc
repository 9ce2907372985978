// The sampling kernel on a GPU against the CPU Sampler with the same u (helpers and
// tolerances of sample_host_parity_test.cc); skipped without a CUDA device. Adds
// the vocab sizes the harness is too slow for (152k, 256k) and many rows per launch.
#include <cuda_runtime_api.h>

#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cuda/sampling/launchers.h"
#include "tests/kernels/cuda/sampling/sample_test_util.h"

namespace strata::cuda {
namespace {

using namespace sample_test;  // NOLINT: test helpers

template <typename T>
T* ToDevice(const T* host, size_t n) {
  if (!host) return nullptr;
  T* d = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&d), n * sizeof(T)) != cudaSuccess) return nullptr;
  cudaMemcpy(d, host, n * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

// Copies the host arrays of `h` to the device, samples, copies tokens/logprobs back.
bool RunOnDevice(const SampleParams& h) {
  const size_t rows = static_cast<size_t>(h.rows);
  SampleParams d = h;
  d.logits = ToDevice(h.logits, rows * static_cast<size_t>(h.logits_stride));
  d.temperature = ToDevice(h.temperature, rows);
  d.top_k = ToDevice(h.top_k, rows);
  d.top_p = ToDevice(h.top_p, rows);
  d.min_p = ToDevice(h.min_p, rows);
  d.u = ToDevice(h.u, rows);
  d.tokens = ToDevice(h.tokens, rows);
  d.logprobs = ToDevice(h.logprobs, rows);
  bool ok = LaunchSample(d, nullptr) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess;
  ok = ok && cudaMemcpy(h.tokens, d.tokens, rows * sizeof(int32_t), cudaMemcpyDeviceToHost) == cudaSuccess;
  ok = ok && cudaMemcpy(h.logprobs, d.logprobs, rows * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
  for (const void* p : {static_cast<const void*>(d.logits), static_cast<const void*>(d.temperature),
                        static_cast<const void*>(d.top_k), static_cast<const void*>(d.top_p),
                        static_cast<const void*>(d.min_p), static_cast<const void*>(d.u),
                        static_cast<const void*>(d.tokens), static_cast<const void*>(d.logprobs)}) {
    cudaFree(const_cast<void*>(p));
  }
  return ok;
}

const std::vector<RowKnobs> kMix = {
    {0.0f}, {1.0f}, {0.7f, 40, 0.9f, 0.05f}, {1.0f, 1}, {1.0f, 50}, {1.0f, 0, 0.5f},
    {1.0f, 0, 1.0f, 0.1f}, {1.5f, 0, 0.95f}, {0.3f, 100, 1.0f, 0.01f}, {1.0f, 0, 0.999f},
};

TEST(CudaSampleDevice, MatchesCpuSampler) {
  SKIP_WITHOUT_GPU();
  for (int32_t vocab : {1001, 32003, 151937, 256001}) {
    SCOPED_TRACE(vocab);
    const auto knobs = Repeat(kMix, vocab > 100000 ? 2 : 10);
    CheckRows(RandomLogits(knobs.size() * vocab, vocab, 2.0f), vocab, knobs, vocab, RunOnDevice);
  }
}

TEST(CudaSampleDevice, TiesAndSpecialValues) {
  SKIP_WITHOUT_GPU();
  const int32_t vocab = 32003;
  const auto knobs = Repeat(kMix, 4);
  auto logits = RandomLogits(knobs.size() * vocab, 5, 1.5f);
  for (float& l : logits) l = std::round(l);
  for (size_t i = 0; i < logits.size(); i += 17) logits[i] = kNaN;
  for (size_t i = 5; i < logits.size(); i += 23) logits[i] = -kInf;
  for (int32_t i = 0; i < vocab; ++i) logits[3 * vocab + i] = -kInf;  // an empty row
  for (int32_t i : {7, 70, 700}) logits[4 * vocab + i] = kInf;
  CheckRows(logits, vocab, knobs, 6, RunOnDevice);
}

}  // namespace
}  // namespace strata::cuda
