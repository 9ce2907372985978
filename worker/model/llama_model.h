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
// Threading: Forward is called from one thread at a time (the step thread);
// it uses the given pool for data parallelism inside each op. Scratch buffers
// are owned by the model and reused across steps.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/cpu/thread_pool.h"
#include "worker/kv_cache.h"
#include "worker/model/forward_batch.h"
#include "parallel/parallel_groups.h"
#include "worker/model/model_shard.h"
#include "worker/model/model_weights.h"

namespace strata {

class LlamaModel {
 public:
  // `config` and `weights` must outlive the model. `weights` are the whole
  // model's, or the shard's (ShardWeights) when `shard` is not the whole model.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(const ModelConfig* config,
                                                            const ModelWeights* weights);
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(const ModelConfig* config,
                                                            const ModelWeights* weights,
                                                            const ModelShard& shard);

  // The communicators a sharded model uses (must outlive their use; rebound
  // when the replica's collective is rebuilt). A group of size 1 may be null.
  void BindGroups(parallel::ParallelGroups groups) { groups_ = groups; }

  // Runs the batch, writing its K/V into `kv` (this shard's layers and KV
  // heads) and, on the last pipeline stage, the logits of batch.logit_rows
  // into `logits` ([logit_rows.size(), vocab], every rank of the tp group);
  // other stages leave `logits` empty.
  absl::Status Forward(const ForwardBatch& batch, KvCache* kv, ThreadPool* pool,
                       std::vector<float>* logits);

  const ModelConfig& config() const { return *config_; }
  const ModelShard& shard() const { return shard_; }

 private:
  LlamaModel(const ModelConfig* config, const ModelWeights* weights, const ModelShard& shard)
      : config_(config), weights_(weights), shard_(shard) {}
  absl::Status Embed(const ForwardBatch& batch);
  absl::Status LmHead(const ForwardBatch& batch, ThreadPool* pool, std::vector<float>* logits);
  // Sums a row-parallel projection's partial output over the tp group.
  absl::Status TpAllReduce(float* data, int64_t count);
  absl::Status Validate(const ForwardBatch& batch, const KvCache& kv) const;
  absl::Status Layer(int64_t layer, const ForwardBatch& batch, KvCache* kv, ThreadPool* pool);

  const ModelConfig* config_;
  const ModelWeights* weights_;
  const ModelShard shard_;
  parallel::ParallelGroups groups_;
  // Scratch, [tokens, width] each.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_;
  std::vector<float> local_logits_, gathered_logits_;
};

}  // namespace strata
