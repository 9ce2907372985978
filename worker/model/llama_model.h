// The Llama-family forward pass on the CPU (Llama 2/3, Mistral, Qwen2,
// SmolLM2): RMSNorm, RoPE, grouped-query attention over the paged KV cache,
// SwiGLU MLP, tied or untied LM head, optional QKV bias.
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
#include "worker/model/model_weights.h"

namespace strata {

class LlamaModel {
 public:
  // `config` and `weights` must outlive the model.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(const ModelConfig* config,
                                                            const ModelWeights* weights);

  // Runs the batch, writing its K/V into `kv` and the logits of
  // batch.logit_rows into `logits` ([logit_rows.size(), vocab]).
  absl::Status Forward(const ForwardBatch& batch, KvCache* kv, ThreadPool* pool,
                       std::vector<float>* logits);

  const ModelConfig& config() const { return *config_; }

 private:
  LlamaModel(const ModelConfig* config, const ModelWeights* weights)
      : config_(config), weights_(weights) {}
  absl::Status Validate(const ForwardBatch& batch, const KvCache& kv) const;
  absl::Status Layer(int64_t layer, const ForwardBatch& batch, KvCache* kv, ThreadPool* pool);

  const ModelConfig* config_;
  const ModelWeights* weights_;
  // Scratch, [tokens, width] each.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_;
};

}  // namespace strata
