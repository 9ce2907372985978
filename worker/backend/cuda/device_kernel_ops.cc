#include "worker/backend/cuda/device_kernel_ops.h"

#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cuda/attention/launchers.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/gemm/launchers.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/prefill/launchers.h"
#include "kernels/cuda/quant/launchers.h"
#include "kernels/cuda/sampling/launchers.h"

namespace strata {

namespace {

absl::Status Cuda(cudaError_t err, const char* what) { return cuda::CudaStatus(err, what); }

// cuBLASLt's workspace: 32 MiB is what its heuristics want for large Hopper tiles.
constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

}  // namespace

absl::StatusOr<KernelDeviceInfo> DeviceKernelOps::CheckDevice(int index) {
  const std::string dev = absl::StrCat("cuda:", index);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it so later calls start clean
    return absl::FailedPreconditionError(
        absl::StrCat(dev, ": no CUDA device is visible (cudaGetDeviceCount: ", cudaGetErrorString(err), ")"));
  }
  if (count == 0) return absl::FailedPreconditionError(absl::StrCat(dev, ": no CUDA device is visible"));
  if (index < 0 || index >= count) {
    return absl::FailedPreconditionError(absl::StrCat(dev, ": only ", count, " CUDA device",
                                                      count == 1 ? " is" : "s are", " visible (0..", count - 1,
                                                      "; CUDA_VISIBLE_DEVICES filters them)"));
  }
  cudaDeviceProp prop{};
  RETURN_IF_ERROR(Cuda(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties"));
  KernelDeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.sm = prop.major * 10 + prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.total_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  if (prop.major < 8) {
    return absl::FailedPreconditionError(absl::StrCat(dev, " (", info.name, ", sm_", prop.major, prop.minor,
                                                      "): the CUDA backend needs sm_80 or newer"));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<DeviceKernelOps>> DeviceKernelOps::Create(int index) {
  ASSIGN_OR_RETURN(KernelDeviceInfo info, CheckDevice(index));
  auto ops = std::unique_ptr<DeviceKernelOps>(new DeviceKernelOps());
  ops->info_ = info;
  RETURN_IF_ERROR(Cuda(cudaSetDevice(index), "cudaSetDevice"));
  RETURN_IF_ERROR(Cuda(cudaStreamCreateWithFlags(&ops->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  ASSIGN_OR_RETURN(ops->gemm_, cuda::CublasLtGemm::Create(index, kGemmWorkspaceBytes));
  return ops;
}

DeviceKernelOps::~DeviceKernelOps() {
  for (auto& [id, exec] : graphs_) cudaGraphExecDestroy(exec);
  if (stream_ != nullptr) {
    cudaStreamSynchronize(stream_);
    gemm_.reset();
    cudaStreamDestroy(stream_);
  }
}

absl::StatusOr<DeviceMemoryInfo> DeviceKernelOps::MemoryInfo() const {
  size_t free_bytes = 0, total_bytes = 0;
  RETURN_IF_ERROR(Cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo"));
  return DeviceMemoryInfo{static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes)};
}

absl::StatusOr<void*> DeviceKernelOps::Malloc(int64_t bytes) {
  if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative size ", bytes));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, static_cast<size_t>(bytes > 0 ? bytes : 1));
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    return absl::ResourceExhaustedError(absl::StrCat("cuda:", info_.index, ": cannot allocate ", bytes,
                                                     " bytes (", free_bytes, " of ", total_bytes, " free)"));
  }
  RETURN_IF_ERROR(Cuda(err, "cudaMalloc"));
  return p;
}

void DeviceKernelOps::Free(void* p) { cudaFree(p); }

absl::Status DeviceKernelOps::CopyToDevice(void* dst, const void* host_src, int64_t bytes) {
  if (bytes <= 0) return absl::OkStatus();
  // From pageable memory cudaMemcpyAsync stages the bytes before it returns,
  // so the caller may reuse host_src at once.
  return Cuda(cudaMemcpyAsync(dst, host_src, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync (to device)");
}

absl::Status DeviceKernelOps::CopyToHost(void* host_dst, const void* src, int64_t bytes) {
  if (bytes > 0) {
    RETURN_IF_ERROR(Cuda(cudaMemcpyAsync(host_dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, stream_),
                         "cudaMemcpyAsync (to host)"));
  }
  return Synchronize();
}

absl::Status DeviceKernelOps::FillZero(void* dst, int64_t bytes) {
  if (bytes <= 0) return absl::OkStatus();
  return Cuda(cudaMemsetAsync(dst, 0, static_cast<size_t>(bytes), stream_), "cudaMemsetAsync");
}

absl::Status DeviceKernelOps::StridedCopy(const StridedCopyParams& p) {
  if (p.rows <= 0 || p.cols <= 0) return absl::OkStatus();
  return Cuda(cudaMemcpy2DAsync(p.dst, static_cast<size_t>(p.dst_stride) * sizeof(float), p.src,
                                static_cast<size_t>(p.src_stride) * sizeof(float),
                                static_cast<size_t>(p.cols) * sizeof(float), static_cast<size_t>(p.rows),
                                cudaMemcpyDeviceToDevice, stream_),
              "cudaMemcpy2DAsync (StridedCopy)");
}

absl::Status DeviceKernelOps::Synchronize() {
  if (!watch_.active()) return Cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  BoundedStreamWaitParams p;
  p.watch = &watch_;
  p.what = absl::StrCat("cuda:", info_.index, " stream");
  p.done = [this]() -> absl::StatusOr<bool> {
    const cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaErrorNotReady) return false;
    RETURN_IF_ERROR(Cuda(e, "cudaStreamQuery"));
    return true;
  };
  return BoundedStreamWait(p);
}

absl::Status DeviceKernelOps::BeginCapture() {
  return Cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

absl::StatusOr<int64_t> DeviceKernelOps::EndCapture() {
  cudaGraph_t graph = nullptr;
  RETURN_IF_ERROR(Cuda(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture"));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  RETURN_IF_ERROR(Cuda(err, "cudaGraphInstantiate"));
  const int64_t id = next_graph_++;
  graphs_[id] = exec;
  return id;
}

absl::Status DeviceKernelOps::LaunchGraph(int64_t graph) {
  auto it = graphs_.find(graph);
  if (it == graphs_.end()) return absl::NotFoundError(absl::StrCat("no graph ", graph));
  return Cuda(cudaGraphLaunch(it->second, stream_), "cudaGraphLaunch");
}

void DeviceKernelOps::DestroyGraph(int64_t graph) {
  auto it = graphs_.find(graph);
  if (it == graphs_.end()) return;
  cudaGraphExecDestroy(it->second);
  graphs_.erase(it);
}

absl::Status DeviceKernelOps::RmsNormResidual(const cuda::RmsNormResidualParams& p) {
  return Cuda(cuda::LaunchRmsNormResidual(p, stream_), "RmsNormResidual");
}
absl::Status DeviceKernelOps::Rope(const cuda::RopeParams& p) { return Cuda(cuda::LaunchRope(p, stream_), "Rope"); }
absl::Status DeviceKernelOps::SwiGlu(const cuda::SwiGluParams& p) {
  return Cuda(cuda::LaunchSwiGlu(p, stream_), "SwiGlu");
}
absl::Status DeviceKernelOps::Embedding(const cuda::EmbeddingParams& p) {
  return Cuda(cuda::LaunchEmbedding(p, stream_), "Embedding");
}
absl::Status DeviceKernelOps::ResidualAdd(const cuda::ResidualAddParams& p) {
  return Cuda(cuda::LaunchResidualAdd(p, stream_), "ResidualAdd");
}
absl::Status DeviceKernelOps::BiasAdd(const cuda::BiasAddParams& p) {
  return Cuda(cuda::LaunchBiasAdd(p, stream_), "BiasAdd");
}
absl::Status DeviceKernelOps::GatherRows(const cuda::GatherRowsParams& p) {
  return Cuda(cuda::LaunchGatherRows(p, stream_), "GatherRows");
}
absl::Status DeviceKernelOps::KvWrite(const cuda::KvWriteParams& p) {
  return Cuda(cuda::LaunchKvWrite(p, stream_), "KvWrite");
}
absl::Status DeviceKernelOps::DecodeAttention(const cuda::DecodeAttentionParams& p) {
  return Cuda(cuda::LaunchDecodeAttention(p, stream_), "DecodeAttention");
}
absl::Status DeviceKernelOps::PrefillAttention(const cuda::PrefillAttentionParams& p) {
  return Cuda(cuda::LaunchPrefillAttention(p, stream_), "PrefillAttention");
}
absl::Status DeviceKernelOps::Cast(const cuda::CastParams& p) { return Cuda(cuda::LaunchCast(p, stream_), "Cast"); }
absl::Status DeviceKernelOps::Fp8Quantize(const cuda::Fp8QuantizeParams& p) {
  return Cuda(cuda::LaunchFp8Quantize(p, stream_), "Fp8Quantize");
}
absl::Status DeviceKernelOps::DequantBf16(const cuda::DequantBf16Params& p) {
  return Cuda(cuda::LaunchDequantBf16(p, stream_), "DequantBf16");
}
absl::Status DeviceKernelOps::QGemv(const cuda::QGemvParams& p) {
  return Cuda(cuda::LaunchQGemv(p, stream_), "QGemv");
}
absl::Status DeviceKernelOps::Sample(const cuda::SampleParams& p) {
  return Cuda(cuda::LaunchSample(p, stream_), "Sample");
}
absl::Status DeviceKernelOps::Gemm(const cuda::CublasLtGemmPlan& plan, const cuda::GemmOperands& ops) {
  return gemm_->Run(plan, ops, stream_);
}

}  // namespace strata
