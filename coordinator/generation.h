// One generation as the coordinator's core sees it, independent of the client
// API it came in on: frontends (KServe v2, strata.v1) parse and validate their
// wire format into a GenerationRequest, and turn GenerationChunks back into
// their responses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/sampling_params.h"

namespace strata::coordinator {

enum class FinishReason {
  kNone,       // more chunks follow
  kStop,       // end-of-generation token, stop token id or stop string
  kLength,     // max_tokens or the context length reached
  kCancelled,  // aborted by the server
};

struct GenerationRequest {
  std::string request_id;             // for logs; the core makes one when empty
  std::vector<int32_t> prompt;        // token ids, non-empty
  SamplingParams sampling;            // seed unset: the core draws one
  int32_t max_tokens = 0;             // 0: the server's max_tokens limit
  int32_t min_tokens = 0;             // no stop token / string ends it before this many
  std::vector<std::string> stop;      // stop strings (not returned in the text)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;            // keep going past end-of-generation tokens
  bool logprobs = false;              // fill GenerationChunk::logprobs
  bool skip_special_tokens = true;    // leave special tokens out of the text
  int32_t priority = 0;               // higher runs first
  absl::Time deadline = absl::InfiniteFuture();
};

// New output since the previous chunk of the same request.
struct GenerationChunk {
  std::string text;                   // UTF-8 complete; may lag token_ids
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;        // parallel to token_ids when requested
  FinishReason finish = FinishReason::kNone;  // set on the last chunk only
  int32_t prompt_tokens = 0;          // set on every chunk
  int32_t completion_tokens = 0;      // generated so far, including this chunk
};

}  // namespace strata::coordinator
