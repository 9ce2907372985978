#include "worker/engine.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/sampler.h"

namespace strata {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Per-request state of Generate.
struct Sequence {
  size_t request = 0;
  int32_t slot = 0;             // row in the block table
  std::vector<int32_t> tokens;  // prompt + generated
  int64_t computed = 0;         // tokens whose KV is in the cache
  std::unique_ptr<Sampler> sampler;
  bool done = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config) {
  auto e = std::unique_ptr<Engine>(new Engine());
  e->config_ = config;
  if (config.max_sequences < 1) return absl::InvalidArgumentError("max_sequences must be >= 1");
  if (config.prefill_chunk < 1) return absl::InvalidArgumentError("prefill_chunk must be >= 1");
  ASSIGN_OR_RETURN(e->model_, LoadModel(config.model_path));
  ASSIGN_OR_RETURN(e->pool_, ThreadPool::Create(config.threads));
  e->backend_ = std::make_unique<CpuBackend>(e->pool_.get());
  ASSIGN_OR_RETURN(e->runner_, LlamaModel::Create(&e->model_->config, &e->model_->weights, e->backend_.get()));
  const ModelConfig& mc = e->model_->config;
  e->max_context_ = config.max_context > 0 ? config.max_context : std::min<int64_t>(mc.context_length, 4096);
  if (e->max_context_ > mc.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("max context ", e->max_context_,
                                                   " exceeds the model's context length ", mc.context_length));
  }
  KvCacheConfig kc;
  kc.n_layers = mc.n_layers;
  kc.n_kv_heads = mc.n_kv_heads;
  kc.head_dim = mc.head_dim;
  kc.block_size = config.kv_block_size;
  kc.dtype = config.kv_dtype;
  if (kc.block_size <= 0) return absl::InvalidArgumentError("kv_block_size must be positive");
  e->blocks_per_seq_ = static_cast<int32_t>((e->max_context_ + kc.block_size - 1) / kc.block_size);
  kc.num_blocks = 1 + e->blocks_per_seq_ * config.max_sequences;
  ASSIGN_OR_RETURN(e->kv_, KvCache::Create(kc));
  return e;
}

absl::Status Engine::CheckPrompt(const GenerateRequest& r) const {
  if (r.prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  if (r.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  const int64_t need = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
  if (need > max_context_) {
    return absl::InvalidArgumentError(absl::StrCat("prompt (", r.prompt.size(), " tokens) + max_tokens (",
                                                   r.max_tokens, ") exceeds the context limit of ",
                                                   max_context_, " tokens"));
  }
  for (int32_t t : r.prompt) {
    if (t < 0 || t >= model_->config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token id ", t, " outside the vocabulary"));
    }
  }
  return ValidateSamplingParams(r.sampling);
}

absl::StatusOr<std::vector<GenerateResult>> Engine::Generate(
    const std::vector<GenerateRequest>& requests,
    const std::function<bool(size_t, int32_t)>& on_token) {
  if (requests.size() > static_cast<size_t>(config_.max_sequences)) {
    return absl::ResourceExhaustedError(absl::StrCat(requests.size(), " requests exceed max_sequences = ",
                                                     config_.max_sequences));
  }
  std::vector<Sequence> seqs(requests.size());
  std::vector<GenerateResult> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    RETURN_IF_ERROR(CheckPrompt(requests[i]));
    seqs[i].request = i;
    seqs[i].slot = static_cast<int32_t>(i);
    seqs[i].tokens = requests[i].prompt;
    ASSIGN_OR_RETURN(seqs[i].sampler, Sampler::Create(requests[i].sampling));
    seqs[i].done = requests[i].max_tokens == 0;
  }
  // Each slot owns a fixed range of blocks (block 0 is the null block).
  ForwardBatch batch;
  batch.n_seqs = static_cast<int32_t>(requests.size());
  batch.max_blocks_per_seq = blocks_per_seq_;
  batch.block_tables.resize(static_cast<size_t>(batch.n_seqs) * blocks_per_seq_);
  for (int32_t s = 0; s < batch.n_seqs; ++s) {
    for (int32_t b = 0; b < blocks_per_seq_; ++b) {
      batch.block_tables[s * blocks_per_seq_ + b] = 1 + s * blocks_per_seq_ + b;
    }
  }
  const auto start = Clock::now();
  std::vector<float> logits;
  std::vector<Sequence*> sampled;
  const int64_t vocab = model_->config.vocab_size;
  for (;;) {
    // Schedule: every unfinished sequence gets its uncomputed tokens, up to
    // the prefill chunk; a sequence whose last token is in the batch samples.
    batch.tokens.clear();
    batch.positions.clear();
    batch.token_seq.clear();
    batch.logit_rows.clear();
    sampled.clear();
    for (Sequence& s : seqs) {
      if (s.done) continue;
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(s.tokens.size()) - s.computed,
                                          config_.prefill_chunk);
      for (int64_t i = 0; i < n; ++i) {
        batch.tokens.push_back(s.tokens[s.computed + i]);
        batch.positions.push_back(static_cast<int32_t>(s.computed + i));
        batch.token_seq.push_back(s.slot);
      }
      s.computed += n;
      if (s.computed == static_cast<int64_t>(s.tokens.size())) {
        batch.logit_rows.push_back(static_cast<int32_t>(batch.tokens.size()) - 1);
        sampled.push_back(&s);
      }
    }
    if (batch.tokens.empty()) break;
    // Execute.
    RETURN_IF_ERROR(runner_->Forward(batch, kv_.get(), &logits));
    // Update: sample, append, check stops.
    for (size_t r = 0; r < sampled.size(); ++r) {
      Sequence& s = *sampled[r];
      const GenerateRequest& req = requests[s.request];
      GenerateResult& res = results[s.request];
      ASSIGN_OR_RETURN(Sampler::Result pick,
                       s.sampler->Sample(absl::MakeConstSpan(logits.data() + r * vocab, vocab), s.tokens));
      const auto now = Clock::now();
      if (res.tokens.empty()) res.ttft_s = Seconds(start, now);
      res.decode_s = Seconds(start, now) - res.ttft_s;
      res.tokens.push_back(pick.token);
      s.tokens.push_back(pick.token);
      const bool keep_going = on_token ? on_token(s.request, pick.token) : true;
      const bool stop_token = std::find(req.stop_token_ids.begin(), req.stop_token_ids.end(),
                                        pick.token) != req.stop_token_ids.end();
      if (stop_token || (req.stop_at_eog && model_->tokenizer->IsEndOfGeneration(pick.token))) {
        res.finish = FinishReason::kStop;
        s.done = true;
      } else if (static_cast<int32_t>(res.tokens.size()) >= req.max_tokens) {
        res.finish = FinishReason::kLength;
        s.done = true;
      } else if (!keep_going) {
        res.finish = FinishReason::kStop;
        s.done = true;
      }
    }
  }
  return results;
}

absl::StatusOr<std::vector<float>> Engine::EvalLogits(absl::Span<const int32_t> tokens,
                                                      size_t prefill) {
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens");
  if (static_cast<int64_t>(tokens.size()) > max_context_) {
    return absl::InvalidArgumentError(absl::StrCat(tokens.size(), " tokens exceed the context limit of ",
                                                   max_context_));
  }
  ForwardBatch batch;
  batch.n_seqs = 1;
  batch.max_blocks_per_seq = blocks_per_seq_;
  for (int32_t b = 0; b < blocks_per_seq_; ++b) batch.block_tables.push_back(1 + b);
  if (prefill == 0 || prefill > tokens.size()) prefill = tokens.size();
  std::vector<float> all, logits;
  for (size_t start = 0, step = prefill; start < tokens.size(); start += step, step = 1) {
    batch.tokens.clear();
    batch.positions.clear();
    batch.token_seq.clear();
    batch.logit_rows.clear();
    for (size_t i = start; i < std::min(tokens.size(), start + step); ++i) {
      batch.tokens.push_back(tokens[i]);
      batch.positions.push_back(static_cast<int32_t>(i));
      batch.token_seq.push_back(0);
      batch.logit_rows.push_back(static_cast<int32_t>(i - start));
    }
    RETURN_IF_ERROR(runner_->Forward(batch, kv_.get(), &logits));
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

}  // namespace strata
