// The Backend for NVIDIA GPUs: LlamaModel's ops mapped onto the kernels of
// kernels/cuda and cuBLASLt, through KernelOps (kernel_ops.h), so the same
// mapping runs on a GPU (DeviceKernelOps) and, in CI, on the host harness
// (HostKernelOps) where its logits are checked against CpuBackend's.
//
// Weights (PrepareWeights): F16/BF16 matrices are uploaded as stored; Q8_0,
// Q4_0 and Q4_1 stay in their GGUF blocks (weight-only kernels read them);
// every other type (F32, k-quants) becomes BF16 rows dequantised on the host.
// Norms, biases and RoPE frequencies are f32; activations are f32.
//
// MatMuls (Y[M, N] = X[M, K] . W^T, f32 X and Y):
//   F16/BF16 W          X cast to W's type once per input, cuBLASLt GEMM -> f32
//   F8E4M3 W            X quantised to E4M3 per tensor once per input, FP8
//                       cuBLASLt GEMM, W's row scales in the column epilogue
//   Q8_0/Q4_0/Q4_1 W    M <= kQGemvMaxM (decode): QGemv reads the blocks
//                       M >  kQGemvMaxM: W dequantised to BF16 in row chunks
//                       (<= kDequantChunkBytes), each a BF16 cuBLASLt GEMM
// Attention, planned once per step (BeginForward, then on the step's first
// Attention call, when the head counts are known):
//   a sequence with >= kPrefillMinRows query tokens and head_dim 64/128
//       -> FlashAttention prefill kernel over the paged cache (whole batch)
//   otherwise -> split-KV decode kernel, max_context = the batch's longest
//       context (rounded up to a power of two >= 64 when graphs are on, so a
//       graph serves many steps), partition size from SuggestDecodePartitionTokens
//
// CUDA graphs (options.cuda_graphs): the kernels of a decode-only step (one
// query token per sequence, <= max_graph_tokens tokens) are recorded instead
// of launched, and at the step's end (CopyToHost) replayed from a graph
// captured once per key: (tokens, sequences, block-table width, logit rows,
// max_context bucket, the op sequence, and the memory epoch, which any
// Allocate or Free advances, so a graph never outlives a pointer it baked in).
// The step's per-token inputs live in buffers the model uploads before
// BeginForward, and GatherRows' row ids are copied eagerly, so a replay reads
// the new step's values. A Synchronize, CopyToDevice or FillZero in the middle
// of a step (tensor parallelism, pipeline sends) runs what was recorded
// eagerly and the rest of the step without a graph. Models without pipeline
// stages pad decode batches to GraphBatchBucket tokens and a power-of-two
// block-table width first (PaddingFor), so batch sizes 5..8 share one graph.
// Tensor-parallel collectives are recorded too (Collective), so a TP decode
// step is one graph with its NCCL kernels.
//
// Threading: one caller at a time (the step thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/backend/backend.h"
#include "worker/backend/cuda/kernel_ops.h"

namespace strata {

struct CudaBackendOptions {
  // Layer matrices stored as FP8 E4M3 with per-row scales (quantised from
  // whatever the file holds when the weights are prepared), run as FP8
  // cuBLASLt GEMMs on activations quantised per tensor at each call (vLLM's
  // dynamic "fp8" scheme). Needs sm_89+. Embeddings and the LM head stay as
  // they are.
  bool fp8_weights = false;
  bool cuda_graphs = true;
  int64_t max_graph_tokens = 256;  // larger decode steps run without graphs
  int max_graphs = 128;            // the least recently launched is destroyed for one more
};

class CudaBackend final : public Backend {
 public:
  // A query chunk at least this long sends the step to the prefill kernel.
  static constexpr int64_t kPrefillMinRows = 16;
  // Largest BF16 chunk of a quantised weight dequantised for one GEMM.
  static constexpr int64_t kDequantChunkBytes = int64_t{32} << 20;

  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(std::unique_ptr<KernelOps> ops,
                                                            const CudaBackendOptions& options = {});
  ~CudaBackend() override;

  KernelOps& ops() const { return *ops_; }

  DeviceSpec device() const override { return DeviceSpec{DeviceKind::kCuda, ops_->info().index}; }
  std::string Describe() const override;
  bool host_memory() const override { return false; }
  void* native_stream() const override { return ops_->stream(); }

  absl::StatusOr<DeviceMemoryInfo> MemoryInfo() const override { return ops_->MemoryInfo(); }
  absl::StatusOr<DeviceBuffer> Allocate(int64_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* host_src, int64_t bytes) override;
  absl::Status CopyToHost(void* host_dst, const void* src, int64_t bytes) override;
  absl::Status FillZero(void* dst, int64_t bytes) override;
  absl::Status Synchronize() override;
  absl::StatusOr<BackendWeights> PrepareWeights(const ModelWeights& weights) override;

  absl::Status BeginForward(const ForwardBatch& batch) override;
  // Decode-only batches (one token per sequence, <= max_graph_tokens):
  // tokens up to GraphBatchBucket, block-table columns up to a power of two,
  // so a continuously changing batch replays few graphs. The same with
  // graphs off (TP ranks must pad alike).
  BatchPadding PaddingFor(const ForwardBatch& batch) const override;
  // The sampling kernel (kernels/cuda/sampling) on the logits in device
  // memory after the step's graph or kernels; only tokens and logprobs are
  // copied back (8 bytes a row instead of 4 x vocab).
  bool samples_logits() const override { return true; }
  // Recorded with the step's kernels (kind 'C' in the graph key), so a
  // tensor-parallel decode step is one graph, its NCCL all-reduces included.
  absl::Status Collective(std::function<absl::Status()> collective) override;
  void ForgetCapturedWork() override;
  void WatchCollectives(CollectiveWatch watch) override { ops_->SetCollectiveWatch(std::move(watch)); }
  absl::Status SampleLogits(const float* logits, int32_t vocab, absl::Span<const RowSamplingKnobs> knobs,
                            RowSample* out) override;
  // 1, 2, 4, then multiples of 8 (vLLM's cudagraph batch sizes); `tokens`
  // itself past max_graph_tokens.
  int64_t GraphBatchBucket(int64_t tokens) const;
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
  absl::Status EndStep() override;

 protected:
  void Free(void* data) override;

 private:
  // What BeginForward learnt of the step, and the attention plan built from it.
  struct StepPlan {
    bool valid = false;           // BeginForward ran for this step
    const ForwardBatch* batch = nullptr;
    int32_t max_context = 0;      // longest context in the batch (last position + 1)
    int64_t max_rows = 0;         // most query tokens of one sequence
    bool attention_planned = false;
    bool prefill = false;         // route Attention to the prefill kernel
    int32_t n_tiles = 0, group = 0;
    DeviceBuffer prefill_plan;    // q_start | q_pos0 | tile_start (int32)
    int32_t n_seqs = 0;
  };

  using Work = std::function<absl::Status()>;

  CudaBackend(std::unique_ptr<KernelOps> ops, const CudaBackendOptions& options)
      : ops_(std::move(ops)), options_(options) {}
  // Runs `work` (kernel launches) now, or records it for the step's graph.
  absl::Status Run(char kind, Work work);
  // Runs what was recorded, without a graph; the step continues unrecorded.
  absl::Status FlushEager();
  // The end of a recorded step: replays (capturing first if needed) its graph.
  absl::Status FinishStep();
  void DropGraphs();
  // buf holds at least `bytes` afterwards (reallocated after a Synchronize).
  absl::Status Reserve(DeviceBuffer& buf, int64_t bytes);
  absl::StatusOr<void*> Upload(const void* host, int64_t bytes, BackendWeights& out);
  absl::StatusOr<WeightMatrix> UploadMatrix(const WeightMatrix& w, BackendWeights& out);
  // A layer matrix: FP8 when options_.fp8_weights and its shape allows.
  absl::StatusOr<WeightMatrix> UploadLayerMatrix(const WeightMatrix& w, BackendWeights& out);
  absl::StatusOr<const float*> UploadVector(const std::vector<float>& v, BackendWeights& out);
  // X [tokens, cols] f32 cast to `dtype` into x16_.
  absl::Status CastInput(const MatMulParams& p, cuda::GemmDtype dtype);
  absl::Status Gemm(const MatMulParams& p, const void* w, int64_t w_row_stride, int64_t rows, cuda::GemmDtype dtype,
                    float* y);
  absl::Status QuantMatMul(const MatMulParams& p, bool* x16_is_bf16_of_input);
  absl::Status Fp8MatMul(const MatMulParams& p, bool quantise_input);
  absl::Status PlanAttention(const PagedAttentionParams& p);

  std::unique_ptr<KernelOps> ops_;
  CudaBackendOptions options_;
  // Graph state (see the file comment).
  bool recording_ = false;
  std::vector<Work> pending_;
  std::string pending_kinds_;  // one char per recorded op
  std::string step_key_;       // the step's key less the op sequence
  int64_t epoch_ = 0;
  struct CachedGraph {
    int64_t graph = 0;
    uint64_t last_used = 0;  // graph_clock_ at its last launch
  };
  std::map<std::string, CachedGraph> graphs_;
  uint64_t graph_clock_ = 0;
  DeviceBuffer x16_;                  // a matmul input cast to 16 bits
  DeviceBuffer x8_;                   // a matmul input as E4M3 codes
  DeviceBuffer x8_scale_;             // its f32 scale (offset 0) and amax bits (offset 16)
  DeviceBuffer w_bf16_;               // a quantised weight's chunk as BF16
  DeviceBuffer attention_workspace_;  // split-KV partials
  DeviceBuffer row_ids_;              // GatherRows' rows
  DeviceBuffer sample_args_;          // SampleLogits' per-row knobs and results
  std::vector<char> sample_staging_;  // their host copy
  StepPlan step_;
};

}  // namespace strata
