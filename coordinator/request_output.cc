#include "coordinator/request_output.h"

#include <algorithm>

namespace strata::coordinator {

RequestOutput::RequestOutput(const Tokenizer* tokenizer, const GenerationRequest& request)
    : detok_(tokenizer, request.skip_special_tokens),
      logprobs_(request.logprobs),
      min_tokens_(request.min_tokens),
      prompt_tokens_(static_cast<int32_t>(request.prompt.size())) {
  for (const std::string& s : request.stop) {
    if (!s.empty()) stop_.push_back(s);
  }
}

void RequestOutput::Release(GenerationChunk* chunk, bool final) {
  // A stop string anywhere in the held text ends the output there (once
  // min_tokens were generated; before that, text is released as it comes).
  size_t cut = std::string::npos;
  const bool may_stop = num_generated_ >= min_tokens_;
  if (!may_stop) {
    chunk->text += held_;
    held_.clear();
    return;
  }
  for (const std::string& s : stop_) {
    const size_t at = held_.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    chunk->text += held_.substr(0, cut);
    held_.clear();
    stopped_ = true;
    return;
  }
  if (final) {
    chunk->text += held_;
    held_.clear();
    return;
  }
  // Keep the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : stop_) {
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  chunk->text += held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
}

GenerationChunk RequestOutput::Append(int32_t token, float logprob, bool* stopped) {
  GenerationChunk chunk;
  chunk.token_ids.push_back(token);
  if (logprobs_) chunk.logprobs.push_back(logprob);
  ++num_generated_;
  held_ += detok_.Push(token);
  Release(&chunk, /*final=*/false);
  chunk.prompt_tokens = prompt_tokens_;
  chunk.completion_tokens = num_generated_;
  *stopped = stopped_;
  if (stopped_) chunk.finish = FinishReason::kStop;
  return chunk;
}

GenerationChunk RequestOutput::Finish(FinishReason reason, int32_t token, float logprob) {
  GenerationChunk chunk;
  if (token >= 0 && !stopped_) {
    bool stopped = false;
    chunk = Append(token, logprob, &stopped);
    if (stopped) return chunk;
  }
  if (!stopped_) {
    held_ += detok_.Flush();
    Release(&chunk, /*final=*/true);
  }
  chunk.prompt_tokens = prompt_tokens_;
  chunk.completion_tokens = num_generated_;
  chunk.finish = stopped_ ? FinishReason::kStop : reason;
  return chunk;
}

}  // namespace strata::coordinator
