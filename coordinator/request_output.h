// Turns one request's sampled tokens into the chunks its client sees:
// incremental UTF-8-safe detokenization, stop strings (the matched string and
// anything after it are never sent; text that could still become a stop
// string is held back until it cannot), logprobs and token counts.
//
// Thread ownership: owned and used by the engine loop thread of the replica
// running the request.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/generation.h"

namespace strata::coordinator {

class RequestOutput {
 public:
  // `tokenizer` must outlive this object.
  RequestOutput(const Tokenizer* tokenizer, const GenerationRequest& request);

  // Appends a sampled token. Returns the chunk to send for it (its text may be
  // empty while held back). When a stop string completes, *stopped is set and
  // the returned chunk is the last one (finish = kStop).
  GenerationChunk Append(int32_t token, float logprob, bool* stopped);
  // The last chunk: flushes held-back text and sets `reason`. When `token` is
  // given (>= 0) it is the final sampled token, appended first.
  GenerationChunk Finish(FinishReason reason, int32_t token = -1, float logprob = 0);

  int32_t num_generated() const { return num_generated_; }
  int32_t prompt_tokens() const { return prompt_tokens_; }

 private:
  // Moves text that can no longer be part of a stop string from held_ to the chunk.
  void Release(GenerationChunk* chunk, bool final);

  IncrementalDetokenizer detok_;
  std::vector<std::string> stop_;
  bool logprobs_;
  int32_t min_tokens_;  // stop strings count only from this many generated tokens on
  int32_t prompt_tokens_;
  int32_t num_generated_ = 0;
  bool stopped_ = false;
  std::string held_;  // decoded text not sent yet
};

}  // namespace strata::coordinator
