#include "worker/backend/cuda/host_kernel_ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention/host/host_ops.h"
#include "kernels/cuda/gemm/host/host_ops.h"
#include "kernels/cuda/host/host_ops.h"
#include "kernels/cuda/prefill/host/host_ops.h"
#include "kernels/cuda/quant/host/host_ops.h"
#include "kernels/cuda/sampling/host/host_ops.h"

namespace strata {

HostKernelOps::HostKernelOps(const HostKernelOpsConfig& config) {
  info_.index = 0;
  info_.name = "host harness";
  info_.sm = config.sm;
  info_.sm_count = config.sm_count;
  info_.total_bytes = config.total_bytes;
}

HostKernelOps::~HostKernelOps() {
  for (auto& [p, bytes] : allocations_) std::free(p);
}

absl::StatusOr<DeviceMemoryInfo> HostKernelOps::MemoryInfo() const {
  return DeviceMemoryInfo{info_.total_bytes - allocated_bytes_, info_.total_bytes};
}

absl::StatusOr<void*> HostKernelOps::Malloc(int64_t bytes) {
  if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative size ", bytes));
  if (bytes > info_.total_bytes - allocated_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat("host harness: cannot allocate ", bytes, " bytes (",
                                                     info_.total_bytes - allocated_bytes_, " of ",
                                                     info_.total_bytes, " free)"));
  }
  const size_t rounded = std::max<size_t>(256, (static_cast<size_t>(bytes) + 255) / 256 * 256);
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return absl::ResourceExhaustedError(absl::StrCat("host harness: malloc of ", bytes, " failed"));
  std::memset(p, 0xFF, rounded);  // NaN floats: reads of unwritten memory show
  allocations_[p] = bytes;
  allocated_bytes_ += bytes;
  return p;
}

void HostKernelOps::Free(void* p) {
  auto it = allocations_.find(p);
  if (it == allocations_.end()) return;
  allocated_bytes_ -= it->second;
  allocations_.erase(it);
  std::free(p);
}

absl::Status HostKernelOps::NotWhileCapturing(const char* what) const {
  if (!capturing_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(what, " while a graph is being captured"));
}

absl::Status HostKernelOps::CopyToDevice(void* dst, const void* host_src, int64_t bytes) {
  if (absl::Status s = NotWhileCapturing("CopyToDevice"); !s.ok()) return s;
  if (bytes > 0) std::memcpy(dst, host_src, static_cast<size_t>(bytes));
  return absl::OkStatus();
}

absl::Status HostKernelOps::CopyToHost(void* host_dst, const void* src, int64_t bytes) {
  if (absl::Status s = NotWhileCapturing("CopyToHost"); !s.ok()) return s;
  if (bytes > 0) std::memcpy(host_dst, src, static_cast<size_t>(bytes));
  return absl::OkStatus();
}

absl::Status HostKernelOps::FillZero(void* dst, int64_t bytes) {
  return Enqueue("FillZero", [dst, bytes] {
    if (bytes > 0) std::memset(dst, 0, static_cast<size_t>(bytes));
    return absl::OkStatus();
  });
}

absl::Status HostKernelOps::StridedCopy(const StridedCopyParams& p) {
  return Enqueue("StridedCopy", [p] {
    for (int64_t r = 0; r < p.rows; ++r) std::copy_n(p.src + r * p.src_stride, p.cols, p.dst + r * p.dst_stride);
    return absl::OkStatus();
  });
}

absl::Status HostKernelOps::Synchronize() { return NotWhileCapturing("Synchronize"); }

absl::Status HostKernelOps::BeginCapture() {
  if (capturing_) return absl::FailedPreconditionError("BeginCapture: already capturing");
  capturing_ = true;
  capture_.clear();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> HostKernelOps::EndCapture() {
  if (!capturing_) return absl::FailedPreconditionError("EndCapture without BeginCapture");
  capturing_ = false;
  const int64_t id = next_graph_++;
  graphs_[id] = std::move(capture_);
  capture_.clear();
  ++launches_["GraphCapture"];
  return id;
}

absl::Status HostKernelOps::LaunchGraph(int64_t graph) {
  if (absl::Status s = NotWhileCapturing("LaunchGraph"); !s.ok()) return s;
  auto it = graphs_.find(graph);
  if (it == graphs_.end()) return absl::NotFoundError(absl::StrCat("no graph ", graph));
  ++launches_["GraphLaunch"];
  for (const Work& w : it->second) {
    if (absl::Status s = w(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void HostKernelOps::DestroyGraph(int64_t graph) { graphs_.erase(graph); }

absl::Status HostKernelOps::Enqueue(const char* op, Work work) {
  Work counted = [this, op, work = std::move(work)]() -> absl::Status {
    ++launches_[op];
    absl::Status s = work();
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrCat(op, ": ", s.message()));
  };
  if (capturing_) {
    capture_.push_back(std::move(counted));
    return absl::OkStatus();
  }
  return counted();
}

absl::Status HostKernelOps::RmsNormResidual(const cuda::RmsNormResidualParams& p) {
  return Enqueue("RmsNormResidual", [p] { return cuda::HostRunRmsNormResidual(p); });
}
absl::Status HostKernelOps::Rope(const cuda::RopeParams& p) {
  return Enqueue("Rope", [p] { return cuda::HostRunRope(p); });
}
absl::Status HostKernelOps::SwiGlu(const cuda::SwiGluParams& p) {
  return Enqueue("SwiGlu", [p] { return cuda::HostRunSwiGlu(p); });
}
absl::Status HostKernelOps::Embedding(const cuda::EmbeddingParams& p) {
  return Enqueue("Embedding", [p] { return cuda::HostRunEmbedding(p); });
}
absl::Status HostKernelOps::ResidualAdd(const cuda::ResidualAddParams& p) {
  return Enqueue("ResidualAdd", [p] { return cuda::HostRunResidualAdd(p); });
}
absl::Status HostKernelOps::BiasAdd(const cuda::BiasAddParams& p) {
  return Enqueue("BiasAdd", [p] { return cuda::HostRunBiasAdd(p); });
}
absl::Status HostKernelOps::GatherRows(const cuda::GatherRowsParams& p) {
  return Enqueue("GatherRows", [p] { return cuda::HostRunGatherRows(p); });
}
absl::Status HostKernelOps::KvWrite(const cuda::KvWriteParams& p) {
  return Enqueue("KvWrite", [p] { return cuda::HostRunKvWrite(p); });
}
absl::Status HostKernelOps::DecodeAttention(const cuda::DecodeAttentionParams& p) {
  return Enqueue("DecodeAttention", [p] { return cuda::HostRunDecodeAttention(p); });
}
absl::Status HostKernelOps::PrefillAttention(const cuda::PrefillAttentionParams& p) {
  return Enqueue("PrefillAttention", [p] { return cuda::HostRunPrefillAttention(p); });
}
absl::Status HostKernelOps::Cast(const cuda::CastParams& p) {
  return Enqueue("Cast", [p] { return cuda::HostRunCast(p); });
}
absl::Status HostKernelOps::Fp8Quantize(const cuda::Fp8QuantizeParams& p) {
  return Enqueue("Fp8Quantize", [p] { return cuda::HostRunFp8Quantize(p); });
}
absl::Status HostKernelOps::DequantBf16(const cuda::DequantBf16Params& p) {
  return Enqueue("DequantBf16", [p] { return cuda::HostRunDequantBf16(p); });
}
absl::Status HostKernelOps::QGemv(const cuda::QGemvParams& p) {
  return Enqueue("QGemv", [p] { return cuda::HostRunQGemv(p); });
}
absl::Status HostKernelOps::Collective(const std::function<absl::Status()>& collective) {
  return Enqueue("Collective", collective);
}
absl::Status HostKernelOps::Sample(const cuda::SampleParams& p) {
  return Enqueue("Sample", [p] { return cuda::HostRunSample(p); });
}
absl::Status HostKernelOps::Gemm(const cuda::CublasLtGemmPlan& plan, const cuda::GemmOperands& ops) {
  if (plan.request.sm != info_.sm) {
    return absl::FailedPreconditionError(
        absl::StrCat("GEMM plan made for sm_", plan.request.sm, ", device is sm_", info_.sm));
  }
  return Enqueue("Gemm", [plan, ops] { return cuda::HostRunGemm(plan, ops); });
}

}  // namespace strata
