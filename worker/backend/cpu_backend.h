// Backend on the host: memory is the process's heap, ops are kernels/cpu (the
// CPU reference ops, SIMD-dispatched, data-parallel over a ThreadPool).
//
// Threading: like every Backend, one caller at a time; MatMuls and Attention
// fan out over `pool` (not owned; must outlive the backend) unless the params
// name another pool.
#pragma once

#include <memory>

#include "kernels/cpu/thread_pool.h"
#include "worker/backend/backend.h"

namespace strata {

class CpuBackend final : public Backend {
 public:
  // `pool` may be null (ops run on the calling thread).
  explicit CpuBackend(ThreadPool* pool) : pool_(pool) {}

  ThreadPool* pool() const { return pool_; }

  DeviceSpec device() const override { return DeviceSpec{DeviceKind::kCpu, 0}; }
  std::string Describe() const override;
  bool host_memory() const override { return true; }

  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const override;
  absl::StatusOr<DeviceBuffer> Allocate(int64_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) override;
  absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) override;
  absl::Status FillZero(void* dst, int64_t bytes) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }
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
  absl::Status StridedCopy(const StridedCopyParams& p) override;

 protected:
  void Free(void* data) override;

 private:
  ThreadPool* pool_;
};

}  // namespace strata
