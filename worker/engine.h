// The single-process generation engine: a loaded model, its KV cache and a
// thread pool, driving schedule -> execute -> update over a batch of requests.
// The CLI uses it directly; the worker process reuses its pieces (model
// runner, KV cache, sampler) under the coordinator's plans.
//
// Threading: an Engine is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tokenizer/tokenizer.h"
#include "kernels/cpu/thread_pool.h"
#include "worker/backend/cpu_backend.h"
#include "worker/kv_cache.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"
#include "common/sampling_params.h"

namespace strata {

struct EngineConfig {
  std::string model_path;
  int threads = 1;
  // Longest sequence (prompt + generated) the engine accepts; 0 means the
  // model's context length, capped at 4096 to bound KV memory.
  int64_t max_context = 0;
  // How many sequences can hold KV blocks at once.
  int32_t max_sequences = 1;
  int32_t kv_block_size = 16;
  KvDtype kv_dtype = KvDtype::kF16;
  // Prompt tokens processed per step and sequence (chunked prefill).
  int32_t prefill_chunk = 512;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 128;
  bool stop_at_eog = true;  // stop on the model's end-of-generation tokens
  std::vector<int32_t> stop_token_ids;  // extra tokens that end the request
};

enum class FinishReason { kLength, kStop };

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated tokens (including a final stop token)
  FinishReason finish = FinishReason::kLength;
  double ttft_s = 0;            // time to the first generated token
  double decode_s = 0;          // time from the first to the last token
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config);

  const Tokenizer& tokenizer() const { return *model_->tokenizer; }
  const ModelConfig& model_config() const { return model_->config; }
  const ModelWeights& weights() const { return model_->weights; }
  const EngineConfig& config() const { return config_; }
  int64_t max_context() const { return max_context_; }

  // Runs the requests as one continuously batched group (each sequence leaves
  // the batch when it finishes). on_token(request index, token) is called as
  // tokens are produced; returning false stops that request.
  absl::StatusOr<std::vector<GenerateResult>> Generate(
      const std::vector<GenerateRequest>& requests,
      const std::function<bool(size_t, int32_t)>& on_token);

  // Logits of every position of `tokens` ([n, vocab]) on a fresh sequence
  // (for reference comparisons): the first `prefill` tokens (all when 0) in
  // one forward pass, the rest one token per pass, as generation does.
  absl::StatusOr<std::vector<float>> EvalLogits(absl::Span<const int32_t> tokens,
                                                size_t prefill = 0);

 private:
  Engine() = default;
  absl::Status CheckPrompt(const GenerateRequest& r) const;

  EngineConfig config_;
  int64_t max_context_ = 0;
  int32_t blocks_per_seq_ = 0;
  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Backend> backend_;  // outlives runner_ (its buffers)
  std::unique_ptr<LlamaModel> runner_;
  std::unique_ptr<KvCache> kv_;
};

}  // namespace strata
