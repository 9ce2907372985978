// KernelOps on one NVIDIA GPU: cudaMalloc (never managed memory), one
// non-blocking stream every op is enqueued on, the nvcc-built launchers of
// kernels/cuda and one CublasLtGemm (its workspace belongs to that stream).
// Graphs: stream capture (cudaStreamCaptureModeThreadLocal) instantiated into
// a cudaGraphExec_t per id.
//
// Threading: one caller at a time (the step thread); the stream is owned.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/gemm/cublaslt_gemm.h"
#include "worker/backend/cuda/kernel_ops.h"

namespace strata {

class DeviceKernelOps final : public KernelOps {
 public:
  // FAILED_PRECONDITION, naming "cuda:<index>" and CUDA's reason, when the device
  // is not there (no driver, no GPU, ordinal too large) or older than sm_80.
  static absl::StatusOr<KernelDeviceInfo> CheckDevice(int index);
  static absl::StatusOr<std::unique_ptr<DeviceKernelOps>> Create(int index);
  ~DeviceKernelOps() override;

  const KernelDeviceInfo& info() const override { return info_; }
  void* stream() const override { return stream_; }

  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const override;
  absl::StatusOr<void*> Malloc(int64_t bytes) override;
  void Free(void* p) override;
  absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) override;
  absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) override;
  absl::Status FillZero(void* dst, int64_t bytes) override;
  absl::Status StridedCopy(const StridedCopyParams& p) override;
  // Bounded by the collective watch when one is set (BoundedStreamWait over
  // cudaStreamQuery), else cudaStreamSynchronize.
  absl::Status Synchronize() override;
  void SetCollectiveWatch(CollectiveWatch watch) override { watch_ = std::move(watch); }

  absl::Status BeginCapture() override;
  absl::StatusOr<int64_t> EndCapture() override;
  absl::Status LaunchGraph(int64_t graph) override;
  void DestroyGraph(int64_t graph) override;

  absl::Status RmsNormResidual(const cuda::RmsNormResidualParams& p) override;
  absl::Status Rope(const cuda::RopeParams& p) override;
  absl::Status SwiGlu(const cuda::SwiGluParams& p) override;
  absl::Status Embedding(const cuda::EmbeddingParams& p) override;
  absl::Status ResidualAdd(const cuda::ResidualAddParams& p) override;
  absl::Status BiasAdd(const cuda::BiasAddParams& p) override;
  absl::Status GatherRows(const cuda::GatherRowsParams& p) override;
  absl::Status KvWrite(const cuda::KvWriteParams& p) override;
  absl::Status DecodeAttention(const cuda::DecodeAttentionParams& p) override;
  absl::Status PrefillAttention(const cuda::PrefillAttentionParams& p) override;
  absl::Status Cast(const cuda::CastParams& p) override;
  absl::Status Fp8Quantize(const cuda::Fp8QuantizeParams& p) override;
  absl::Status DequantBf16(const cuda::DequantBf16Params& p) override;
  absl::Status QGemv(const cuda::QGemvParams& p) override;
  absl::Status Sample(const cuda::SampleParams& p) override;
  absl::Status Collective(const std::function<absl::Status()>& collective) override { return collective(); }
  absl::Status Gemm(const cuda::CublasLtGemmPlan& plan, const cuda::GemmOperands& ops) override;

 private:
  DeviceKernelOps() = default;

  KernelDeviceInfo info_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::CublasLtGemm> gemm_;
  std::map<int64_t, cudaGraphExec_t> graphs_;
  CollectiveWatch watch_;  // inactive unless the model's communicators are on the stream
  int64_t next_graph_ = 1;
};

}  // namespace strata
