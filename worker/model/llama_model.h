// The Llama-family forward pass on the CPU (Llama 2/3, Mistral, Qwen2,
// SmolLM2): RMSNorm, RoPE, grouped-query attention over the paged KV cache,
// SwiGLU MLP, tied or untied LM head, optional QKV bias.
//
// Tensor/pipeline parallel: a model built for a ModelShard runs only its
// heads, MLP slice and layers; Forward then all-reduces partial sums over the
// tp group after the attention output and MLP down projections (and after the
// vocab-parallel embedding), receives the hidden states from the previous
// stage / sends them to the next over the pp group, and the last stage
// all-gathers the vocab-parallel logits. Every rank of the replica must call
// Forward with the same batch.
//
// Every op runs on a Backend (worker/backend/backend.h): CpuBackend or
// CudaBackend. The model holds the weights in the backend's form
// (PrepareWeights) and its scratch in backend memory; only the batch's
// inputs go in and the logits come out through host memory.
//
// Threading: Forward is called from one thread at a time (the step thread),
// which is also the only user of the backend. Scratch buffers are owned by
// the model, grown on demand and reused across steps.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/backend/backend.h"
#include "worker/kv_cache.h"
#include "worker/model/forward_batch.h"
#include "parallel/parallel_groups.h"
#include "worker/model/model_shard.h"
#include "worker/model/model_weights.h"

namespace strata {

class LlamaModel {
 public:
  // `config`, `weights` and `backend` must outlive the model. `weights` are
  // the whole model's, or the shard's (ShardWeights) when `shard` is not the
  // whole model.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(const ModelConfig* config,
                                                            const ModelWeights* weights, Backend* backend);
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(const ModelConfig* config,
                                                            const ModelWeights* weights,
                                                            const ModelShard& shard, Backend* backend);

  // The communicators a sharded model uses (must outlive their use; rebound
  // when the replica's collective is rebuilt). A group of size 1 may be null.
  void BindGroups(parallel::ParallelGroups groups) {
    backend_->ForgetCapturedWork();  // graphs may name the old communicators
    groups_ = groups;
  }

  // Runs the batch, writing its K/V into `kv` (this shard's layers and KV
  // heads) and, on the last pipeline stage, the logits of batch.logit_rows
  // into `logits` ([logit_rows.size(), vocab], every rank of the tp group);
  // other stages leave `logits` empty. Without pipeline stages the batch is
  // first padded to the backend's preferred shape (Backend::PaddingFor,
  // PadBatch); the pad rows' logits are dropped. `logits` may be null (a tp
  // rank whose tokens nobody reads): the step runs, collectives included, and
  // ends without copying logits to the host.
  absl::Status Forward(const ForwardBatch& batch, KvCache* kv, std::vector<float>* logits);

  // Whether ForwardSample works: the backend samples logits (a device
  // backend) and this is the last pipeline stage (with tp > 1 every rank
  // samples the all-gathered logits; the sampling rank's tokens are used).
  bool CanSampleOnBackend() const;
  // Forward, then one token per logit row drawn on the backend with that
  // row's knobs (Backend::SampleLogits), so the logits never leave the
  // device. knobs: [batch.logit_rows.size()]; out: one RowSample per row.
  absl::Status ForwardSample(const ForwardBatch& batch, KvCache* kv, absl::Span<const RowSamplingKnobs> knobs,
                             std::vector<RowSample>* out);

  const ModelConfig& config() const { return *config_; }
  const ModelShard& shard() const { return shard_; }
  Backend* backend() const { return backend_; }
  // Bytes the weights take on the backend's device (0 on the CPU: they stay mapped).
  int64_t device_weight_bytes() const { return bw_.device_bytes; }

 private:
  // Backend scratch: grown (never shrunk) to the largest batch seen.
  struct Scratch {
    DeviceBuffer buffer;
    template <typename T>
    T* get() const { return buffer.as<T>(); }
  };
  // The batch's integer inputs where the backend's ops read them.
  struct BatchInputs {
    const int32_t* tokens = nullptr;
    const int32_t* positions = nullptr;
    const int32_t* token_seq = nullptr;
    const int32_t* block_tables = nullptr;
  };

  LlamaModel(const ModelConfig* config, const ModelWeights* weights, const ModelShard& shard, Backend* backend)
      : config_(config), weights_(weights), shard_(shard), backend_(backend) {}
  absl::Status Reserve(Scratch& s, int64_t bytes);
  absl::Status ReserveScratch(int64_t tokens, int64_t logit_rows);
  absl::StatusOr<BatchInputs> UploadInputs(const ForwardBatch& batch);
  absl::Status Embed(const ForwardBatch& batch, const BatchInputs& in);
  absl::Status LmHead(const ForwardBatch& batch, std::vector<float>* logits);
  // Validate, pad (PaddingFor), embed, every layer; a non-last pipeline stage
  // then sends its activations on. Returns the batch that ran (padded or not).
  absl::StatusOr<const ForwardBatch*> RunLayers(const ForwardBatch& batch, KvCache* kv);
  // The logit rows' final norm and LM head: [logit_rows, vocab] in backend
  // memory (local_logits_ with tp 1; with tp > 1 all-gathered over the tp
  // group and put in vocab order in ordered_logits_, on every rank).
  absl::StatusOr<float*> Logits(const ForwardBatch& batch);
  // Sums a row-parallel projection's partial output over the tp group.
  absl::Status TpAllReduce(float* data, int64_t count);
  absl::Status Validate(const ForwardBatch& batch, const KvCache& kv) const;
  absl::Status Layer(int64_t layer, const ForwardBatch& batch, const BatchInputs& in, KvCache* kv);

  const ModelConfig* config_;
  const ModelWeights* weights_;
  const ModelShard shard_;
  Backend* backend_;
  BackendWeights bw_;
  parallel::ParallelGroups groups_;
  // [tokens, width] each, in backend memory.
  Scratch x_, xn_, q_, k_, v_, att_, gate_, up_;
  Scratch local_logits_, gathered_logits_, ordered_logits_;
  Scratch inputs_;  // tokens, positions, token_seq, block tables (device backends)
  ForwardBatch padded_;  // the batch padded to the backend's shape (PaddingFor)
};

}  // namespace strata
