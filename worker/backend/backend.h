// The device a model runs on: memory (allocate, copy) and the ops of a
// Llama-family forward pass. LlamaModel is written against this interface
// only; CpuBackend (host memory, kernels/cpu) and CudaBackend (device memory,
// kernels/cuda + cuBLASLt) implement it.
//
//   model step:  UploadInputs ─► EmbeddingLookup ─► per layer: RmsNorm, MatMuls
//                (QKV), AddBias, Rope, KvWrite, Attention, MatMul (O), Add, ...
//                ─► GatherRows, RmsNorm, MatMul (LM head) ─► CopyToHost(logits)
//
// Pointers in op params are "backend pointers": host pointers for CpuBackend,
// device pointers for CudaBackend (from Allocate, or the weights returned by
// PrepareWeights). The op params are the CPU reference ops' own structs
// (kernels/cpu/*.h), so the CPU reference of every op is the CpuBackend op and
// the CUDA ops are held to it by parity tests. Ops are enqueued in order on the
// backend's one stream; CopyToHost and Synchronize wait for them.
//
// Threading: a Backend is used by one thread at a time (the step thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "worker/backend/collective_watch.h"
#include "worker/backend/device_spec.h"
#include "worker/backend/row_sampling.h"
#include "worker/model/forward_batch.h"
#include "worker/model/model_weights.h"

namespace strata {

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols:
// f32, both in backend memory, not overlapping (strides in floats).
struct StridedCopyParams {
  const float* src = nullptr;
  int64_t src_stride = 0;
  float* dst = nullptr;
  int64_t dst_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;
};

class Backend;

// Memory from Backend::Allocate, freed when destroyed. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* owner, void* data, int64_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }

  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  int64_t bytes() const { return bytes_; }
  void Reset();

 private:
  Backend* owner_ = nullptr;
  void* data_ = nullptr;
  int64_t bytes_ = 0;
};

struct DeviceMemoryInfo {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};

// A model's weights where the backend's ops read them. Matrices may change
// type on the way (CudaBackend keeps BF16/F16/FP8 and the weight-only quantised
// types its kernels read, and converts the rest); vectors are f32.
struct BackendLayerWeights {
  const float* attn_norm = nullptr;
  WeightMatrix wq, wk, wv, wo;
  const float* bq = nullptr;  // null when the family has no QKV bias
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* ffn_norm = nullptr;
  WeightMatrix w_gate, w_up, w_down;
};
struct BackendWeights {
  WeightMatrix token_embd;
  WeightMatrix output;
  const float* output_norm = nullptr;
  std::vector<BackendLayerWeights> layers;
  const float* rope_inv_freq = nullptr;
  std::vector<DeviceBuffer> storage;  // what the pointers above point into (empty on the CPU)
  int64_t device_bytes = 0;           // bytes allocated for them on the device
};

// out[t, :] = table[ids[t] - vocab_begin, :] as f32 when vocab_begin <= ids[t]
// < vocab_end, else zeros (the other tensor-parallel ranks' rows).
struct EmbeddingLookupParams {
  WeightMatrix table;                // [vocab_end - vocab_begin, dim]
  const int32_t* ids = nullptr;      // [tokens]
  float* out = nullptr;              // [tokens, dim]
  int64_t tokens = 0;
  int64_t vocab_begin = 0;
  int64_t vocab_end = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceSpec device() const = 0;
  // One line for logs: "cpu (8 threads)", "cuda:0 NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB".
  virtual std::string Describe() const = 0;
  // True when backend pointers are host pointers (no copies needed).
  virtual bool host_memory() const = 0;
  // The native queue the ops are enqueued on (a cudaStream_t for CudaBackend),
  // null for host backends. Collectives on device buffers (NCCL) order
  // themselves after the work enqueued on it, and it after them.
  virtual void* native_stream() const { return nullptr; }

  // --- memory ---------------------------------------------------------------
  virtual absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const = 0;
  // RESOURCE_EXHAUSTED naming the size when the device has no room.
  virtual absl::StatusOr<DeviceBuffer> Allocate(int64_t bytes) = 0;
  virtual absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) = 0;
  // dst[0, bytes) = 0.
  virtual absl::Status FillZero(void* dst, int64_t bytes) = 0;
  // Waits for the ops enqueued before it.
  virtual absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) = 0;
  virtual absl::Status Synchronize() = 0;
  // Ends a step whose results stay in backend memory (a tp rank that does not
  // sample): waits like Synchronize, but a recorded decode step runs as its
  // graph (CudaBackend), as CopyToHost would.
  virtual absl::Status EndStep() { return Synchronize(); }
  // Weights in the form the ops read; `weights` must outlive the result on the CPU.
  virtual absl::StatusOr<BackendWeights> PrepareWeights(const ModelWeights& weights) = 0;

  // --- steps ----------------------------------------------------------------
  // Called once per forward pass with the host view of its batch, before the
  // pass's first op (after its inputs are uploaded). Device backends plan the
  // step here (e.g. the prefill kernel's per-sequence tiles), once for all
  // layers. The batch outlives the pass's ops. Default: nothing to plan.
  virtual absl::Status BeginForward(const ForwardBatch& batch) {
    (void)batch;
    return absl::OkStatus();
  }
  // The shape this backend wants `batch` padded to (PadBatch) so that steps of
  // nearby sizes share one captured graph: CudaBackend buckets decode-only
  // batches. Asked when PP = 1 (a pipeline stage would have to agree with
  // its neighbours' shapes); must be a function of the batch alone, since
  // every TP rank pads independently and their collectives must match.
  // Default: as is.
  virtual BatchPadding PaddingFor(const ForwardBatch& batch) const {
    (void)batch;
    return {};
  }
  // Whether SampleLogits works here: device backends sample where the logits
  // are, so only token ids cross to the host. Host backends leave it to the
  // caller's Sampler on the logits (default false).
  virtual bool samples_logits() const { return false; }

  // Runs `collective` (a communicator op on backend memory, e.g. the TP
  // all-reduce) in order with the ops before and after it, without a host
  // synchronisation: a communicator bound to native_stream() (NCCL) enqueues
  // itself there. CudaBackend records it into a decode step's CUDA graph like
  // a kernel (stream capture takes the NCCL kernel), so on a host executor the
  // callable runs again at each replay: it may only name state that lives as
  // long as the graph (buffers, counts, the communicator). Default (host
  // backends, whose ops are done when they return): runs it now.
  virtual absl::Status Collective(std::function<absl::Status()> collective) { return collective(); }
  // The communicators recorded collectives name are being replaced
  // (LlamaModel::BindGroups): captured work that names them must go.
  virtual void ForgetCapturedWork() {}
  // Bounds the waits that end a step (CopyToHost, SampleLogits, Synchronize)
  // while collectives may be in the stream: a dead peer then fails the step
  // (watch.check's error, or DEADLINE_EXCEEDED after watch.timeout, the
  // communicators aborted) instead of hanging it. See collective_watch.h.
  // An inactive watch (the default CollectiveWatch) unbounds them again; the
  // callables must stay valid until then. Default (host backends: their
  // collectives finish or time out before Collective returns): ignored.
  virtual void WatchCollectives(CollectiveWatch watch) { (void)watch; }
  // One token per row of `logits` ([rows, vocab] in backend memory; rows =
  // knobs.size()) drawn with that row's knobs; `out` [rows] on the host.
  // Ends the step (like CopyToHost). Default: UNIMPLEMENTED.
  virtual absl::Status SampleLogits(const float* logits, int32_t vocab,
                                    absl::Span<const RowSamplingKnobs> knobs, RowSample* out) {
    (void)logits, (void)vocab, (void)knobs, (void)out;
    return absl::UnimplementedError("this backend does not sample logits; use a Sampler on the host");
  }

  // --- ops (backend pointers; `pool` fields are for CpuBackend) -------------
  virtual absl::Status EmbeddingLookup(const EmbeddingLookupParams& p) = 0;
  // Several matmuls that read the same input (QKV, gate/up).
  virtual absl::Status MatMuls(absl::Span<const MatMulParams> p) = 0;
  virtual absl::Status RmsNorm(const RmsNormParams& p) = 0;
  virtual absl::Status Rope(const RopeParams& p) = 0;
  virtual absl::Status SwiGlu(const SwiGluParams& p) = 0;
  virtual absl::Status KvWrite(const KvWriteParams& p) = 0;
  virtual absl::Status Attention(const PagedAttentionParams& p) = 0;
  // x[r, :] += bias[:] for r < rows.
  virtual absl::Status AddBias(float* x, const float* bias, int64_t rows, int64_t cols) = 0;
  // x[i] += y[i] for i < n.
  virtual absl::Status Add(float* x, const float* y, int64_t n) = 0;
  // dst[r, :] = src[rows[r], :] (cols floats each); `rows` is a host array.
  virtual absl::Status GatherRows(const float* src, absl::Span<const int32_t> rows, int64_t cols, float* dst) = 0;
  // A 2-D block copy (StridedCopyParams), e.g. one rank's vocab columns of
  // the gathered logits into their place in [rows, vocab].
  virtual absl::Status StridedCopy(const StridedCopyParams& p) = 0;

  absl::Status MatMul(const MatMulParams& p) { return MatMuls(absl::MakeConstSpan(&p, 1)); }

 protected:
  friend class DeviceBuffer;
  virtual void Free(void* data) = 0;
};

}  // namespace strata
