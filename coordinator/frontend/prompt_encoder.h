// Prompts as clients write them -> token ids with the model's tokenizer, the
// same way for both frontends:
//   text: Encode(text, add_special = true (BOS when the tokenizer adds one),
//         parse_special = true), as vLLM encodes a completion prompt;
//   chat: the model's ChatTemplate renders the messages, the text is encoded
//         the same way (templates leave BOS to the tokenizer).
//
// Thread ownership: stateless; the ServedModel's tokenizer is immutable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/tokenizer/chat_template.h"
#include "coordinator/inference_backend.h"

namespace strata::coordinator::frontend {

// FAILED_PRECONDITION when the model has no tokenizer.
absl::StatusOr<const Tokenizer*> ModelTokenizer(const ServedModel& model);

absl::StatusOr<std::vector<int32_t>> EncodeText(const ServedModel& model, absl::string_view text,
                                                bool add_special);

// UNIMPLEMENTED with the model's chat_template_error when it has no supported
// template; INVALID_ARGUMENT naming `field`[i].role for a role other than
// system, user, assistant.
absl::StatusOr<std::string> RenderChat(const ServedModel& model,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, absl::string_view field);

// INVALID_ARGUMENT naming `field`[i] and the id when an id is outside
// [0, vocab size).
absl::Status CheckTokenIds(const ServedModel& model, absl::Span<const int32_t> ids,
                           absl::string_view field);

}  // namespace strata::coordinator::frontend
