// What CudaBackend needs from the machine under it: memory, one in-order
// queue, and the kernels of kernels/cuda, each by its one Params struct.
//
//   CudaBackend (op mapping: weights, GEMM choice, casts, attention routing)
//        │ KernelOps
//        ├── DeviceKernelOps  a GPU: cudaMalloc, one non-blocking stream, the nvcc
//        │                    launchers (kernels/cuda/**/launchers.h), cuBLASLt
//        └── HostKernelOps    host memory and the same kernel bodies on the host
//                             harness (kernels/cuda/**/host/host_ops.h), cuBLASLt
//                             emulated from the GEMM plan
//
// So everything CudaBackend decides runs in CI without a GPU, on the kernels'
// own source; only the runtime calls and the nvcc code generation differ on the
// device (and those are what tests/gpu/run_gpu_checks.sh covers).
//
// Pointers are the implementation's "device pointers" (from Malloc). Work is
// enqueued in call order; CopyToHost and Synchronize wait for it. Errors name
// the op. Plain C++: no CUDA headers.
//
// Threading: one caller at a time (the backend's step thread).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/attention/decode_attention_params.h"
#include "kernels/cuda/attention/kv_write_params.h"
#include "kernels/cuda/bias_add_params.h"
#include "kernels/cuda/sampling/sample_params.h"
#include "kernels/cuda/embedding_params.h"
#include "kernels/cuda/gather_rows_params.h"
#include "kernels/cuda/gemm/dequant_bf16_params.h"
#include "kernels/cuda/gemm/gemm_operands.h"
#include "kernels/cuda/gemm/gemm_plan.h"
#include "kernels/cuda/gemm/qgemv_params.h"
#include "kernels/cuda/prefill/prefill_attention_params.h"
#include "kernels/cuda/quant/cast_params.h"
#include "kernels/cuda/quant/fp8_quantize_params.h"
#include "kernels/cuda/residual_add_params.h"
#include "kernels/cuda/rms_norm_residual_params.h"
#include "kernels/cuda/rope_params.h"
#include "kernels/cuda/swiglu_params.h"
#include "worker/backend/backend.h"

namespace strata {

// The device as CudaBackend describes it.
struct KernelDeviceInfo {
  int index = 0;
  std::string name;          // "NVIDIA H100 80GB HBM3", "host harness"
  int sm = 90;               // compute capability, major * 10 + minor
  int sm_count = 132;        // multiprocessors (sizes the split-KV grid)
  int64_t total_bytes = 0;
};

class KernelOps {
 public:
  virtual ~KernelOps() = default;

  virtual const KernelDeviceInfo& info() const = 0;
  // The queue's native handle (cudaStream_t), null on the host harness.
  virtual void* stream() const = 0;

  // --- memory ---------------------------------------------------------------
  virtual absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const = 0;
  // 256-byte aligned; RESOURCE_EXHAUSTED naming the size when there is no room.
  virtual absl::StatusOr<void*> Malloc(int64_t bytes) = 0;
  virtual void Free(void* p) = 0;
  // host_src may be reused as soon as this returns.
  virtual absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) = 0;
  // Waits for the work enqueued before it.
  virtual absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) = 0;
  virtual absl::Status FillZero(void* dst, int64_t bytes) = 0;
  // Device-to-device 2-D copy (cudaMemcpy2DAsync; recorded in a capture).
  virtual absl::Status StridedCopy(const StridedCopyParams& p) = 0;
  virtual absl::Status Synchronize() = 0;
  // Bounds CopyToHost and Synchronize while collectives may be in the queue
  // (Backend::WatchCollectives). Default (the host harness, whose collectives
  // run on the host inside Synchronize and time out themselves): ignored.
  virtual void SetCollectiveWatch(CollectiveWatch watch) { (void)watch; }

  // --- graphs (CUDA graphs on a GPU) ------------------------------------------
  // Between BeginCapture and EndCapture the kernels and FillZero calls are
  // recorded with their Params as given (not run); copies and Synchronize are
  // errors. LaunchGraph enqueues the recorded work again, Params unchanged:
  // the caller guarantees every pointer still means what it meant.
  virtual absl::Status BeginCapture() = 0;
  virtual absl::StatusOr<int64_t> EndCapture() = 0;  // a graph id
  virtual absl::Status LaunchGraph(int64_t graph) = 0;
  virtual void DestroyGraph(int64_t graph) = 0;

  // --- kernels (Params as in kernels/cuda; INVALID_ARGUMENT for bad Params) --
  virtual absl::Status RmsNormResidual(const cuda::RmsNormResidualParams& p) = 0;
  virtual absl::Status Rope(const cuda::RopeParams& p) = 0;
  virtual absl::Status SwiGlu(const cuda::SwiGluParams& p) = 0;
  virtual absl::Status Embedding(const cuda::EmbeddingParams& p) = 0;
  virtual absl::Status ResidualAdd(const cuda::ResidualAddParams& p) = 0;
  virtual absl::Status BiasAdd(const cuda::BiasAddParams& p) = 0;
  virtual absl::Status GatherRows(const cuda::GatherRowsParams& p) = 0;
  virtual absl::Status KvWrite(const cuda::KvWriteParams& p) = 0;
  virtual absl::Status DecodeAttention(const cuda::DecodeAttentionParams& p) = 0;
  virtual absl::Status PrefillAttention(const cuda::PrefillAttentionParams& p) = 0;
  virtual absl::Status Cast(const cuda::CastParams& p) = 0;
  virtual absl::Status Fp8Quantize(const cuda::Fp8QuantizeParams& p) = 0;
  virtual absl::Status DequantBf16(const cuda::DequantBf16Params& p) = 0;
  virtual absl::Status QGemv(const cuda::QGemvParams& p) = 0;
  virtual absl::Status Sample(const cuda::SampleParams& p) = 0;
  // A collective that orders itself on stream() (a bound NCCL communicator):
  // the device calls it at once, inside a capture too (NCCL kernels are
  // captured); the harness runs it in stream order and, when captured, at
  // every replay.
  virtual absl::Status Collective(const std::function<absl::Status()>& collective) = 0;
  // One cuBLASLt GEMM (column epilogue included) planned for info().sm.
  virtual absl::Status Gemm(const cuda::CublasLtGemmPlan& plan, const cuda::GemmOperands& ops) = 0;
};

}  // namespace strata
