// KernelOps on the host: host memory, and the kernels' own source run by the
// host harness (kernels/cuda/harness/host_launch.h); cuBLASLt is emulated from
// the GEMM plan (kernels/cuda/gemm/host/cublaslt_emulation.cc). Everything runs
// on the calling thread, in order; "copies" are memcpy. Graphs are emulated as
// CUDA's are: capture records each launch with its Params by value, a graph
// launch re-runs those launches with those Params.
//
// For tests of CudaBackend's op mapping without a GPU (CudaBackend over these
// ops runs whole models), not for speed. The memory numbers are the configured
// "device": total_bytes, minus what is allocated. Fresh allocations are filled
// with 0xFF bytes (NaN floats), so reads of unwritten memory show.
//
// Threading: one caller at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "worker/backend/cuda/kernel_ops.h"

namespace strata {

struct HostKernelOpsConfig {
  int sm = 90;  // what GEMMs are planned for
  int sm_count = 132;
  int64_t total_bytes = int64_t{16} << 30;  // the pretend device's memory
};

class HostKernelOps final : public KernelOps {
 public:
  explicit HostKernelOps(const HostKernelOpsConfig& config = {});
  ~HostKernelOps() override;

  const KernelDeviceInfo& info() const override { return info_; }
  void* stream() const override { return nullptr; }

  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const override;
  absl::StatusOr<void*> Malloc(int64_t bytes) override;
  void Free(void* p) override;
  absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) override;
  absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) override;
  absl::Status FillZero(void* dst, int64_t bytes) override;
  absl::Status StridedCopy(const StridedCopyParams& p) override;
  absl::Status Synchronize() override;
  // Kept for tests (collective_watch()); the harness runs collectives on the
  // host inside Synchronize, where they time out themselves.
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
  absl::Status Collective(const std::function<absl::Status()>& collective) override;
  absl::Status Gemm(const cuda::CublasLtGemmPlan& plan, const cuda::GemmOperands& ops) override;

  // Kernels run so far per op name (graph replays included), and the graph
  // events "GraphCapture" / "GraphLaunch": tests check which kernels a model ran.
  const std::unordered_map<std::string, int64_t>& launches() const { return launches_; }
  int64_t live_graphs() const { return static_cast<int64_t>(graphs_.size()); }
  // The watch CudaBackend::WatchCollectives passed down last.
  const CollectiveWatch& collective_watch() const { return watch_; }

 private:
  using Work = std::function<absl::Status()>;
  // Runs `work` now, or records it while capturing.
  absl::Status Enqueue(const char* op, Work work);
  absl::Status NotWhileCapturing(const char* what) const;

  KernelDeviceInfo info_;
  std::unordered_map<void*, int64_t> allocations_;
  int64_t allocated_bytes_ = 0;
  std::unordered_map<std::string, int64_t> launches_;
  CollectiveWatch watch_;
  bool capturing_ = false;
  std::vector<Work> capture_;
  std::map<int64_t, std::vector<Work>> graphs_;
  int64_t next_graph_ = 1;
};

}  // namespace strata
