// Backend on one NVIDIA GPU: device memory from cudaMalloc (never managed
// memory), every op enqueued on one non-blocking stream, kernels from
// kernels/cuda (launchers taking one Params struct each).
//
// Weights (PrepareWeights): F16/BF16 matrices are uploaded as they are,
// F32 matrices as BF16, and the GGUF quantised types (Q8_0, Q4_0, Q4_1, k-quants)
// as BF16 rows dequantised on the host, so every matmul is a cuBLASLt GEMM;
// norms, biases and RoPE frequencies stay f32. Activations are f32. The KV
// write (every KvDtype) and attention (the paged split-KV decode kernel) are
// kernels/cuda/attention.
//
// What runs on the device today and what does not is in docs/kernels.md
// ("CUDA backend status"); an op without a device kernel yet returns
// UNIMPLEMENTED naming the op, never a wrong result.
//
// Threading: one caller at a time (the step thread); the stream is owned.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/backend/backend.h"

namespace strata {

struct CudaBackendConfig {
  int device = 0;  // cudaSetDevice ordinal
};

// What CheckDevice found.
struct CudaDeviceInfo {
  int index = 0;
  int device_count = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  int64_t total_bytes = 0;
};

class CudaBackend final : public Backend {
 public:
  // FAILED_PRECONDITION, naming the device and CUDA's reason, when device
  // `index` is not there (no driver, no GPU, ordinal too large).
  static absl::StatusOr<CudaDeviceInfo> CheckDevice(int index);
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const CudaBackendConfig& config);
  ~CudaBackend() override;

  const CudaDeviceInfo& info() const { return info_; }
  cudaStream_t stream() const { return stream_; }
  void* native_stream() const override { return stream_; }

  DeviceSpec device() const override { return DeviceSpec{DeviceKind::kCuda, info_.index}; }
  std::string Describe() const override;
  bool host_memory() const override { return false; }

  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const override;
  absl::StatusOr<DeviceBuffer> Allocate(int64_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) override;
  absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) override;
  absl::Status FillZero(void* dst, int64_t bytes) override;
  absl::Status Synchronize() override;
  absl::StatusOr<BackendWeights> PrepareWeights(const ModelWeights& weights) override;

  absl::Status EmbeddingLookup(const EmbeddingLookupParams& p) override;
  absl::Status MatMuls(absl::Span<const MatMulParams> p) override;
  absl::Status RmsNorm(const RmsNormParams& p) override;
  absl::Status Rope(const RopeParams& p) override;
  absl::Status SwiGlu(const SwiGluParams& p) override;
  absl::Status KvWrite(const KvWriteParams& p) override;
  absl::Status Attention(const PagedAttentionParams& p) override;
  absl::Status AddBias(float* x, const float* bias, int64_t rows, int64_t cols) override;
  absl::Status Add(float* x, const float* y, int64_t n) override;
  absl::Status GatherRows(const float* src, absl::Span<const int32_t> rows, int64_t cols, float* dst) override;

 protected:
  void Free(void* data) override;

 private:
  CudaBackend() = default;
  // Uploads `host` (bytes) into a new buffer kept in `out.storage`.
  absl::StatusOr<void*> Upload(const void* host, int64_t bytes, BackendWeights& out);
  absl::StatusOr<WeightMatrix> UploadMatrix(const WeightMatrix& w, BackendWeights& out);
  absl::StatusOr<const float*> UploadVector(const std::vector<float>& v, BackendWeights& out);

  CudaDeviceInfo info_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer attention_workspace_;  // split-KV partials, grown on demand
};

}  // namespace strata
