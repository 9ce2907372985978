// Prompts as clients write them -> token ids with the model's tokenizer, the
// same way for both frontends:
//   text: Encode(text, add_special = true (BOS when the tokenizer adds one),
//         parse_special = the request's opt-in, false by default): text that
//         spells a control token ("<|im_start|>") is encoded as plain text
//         unless the client asks for raw-prompt parsing;
//   chat: the model's ChatTemplate renders the messages to segments; the
//         template's markup is encoded with special tokens parsed, message
//         contents never (so content cannot forge a turn).
// Encoding is bounded: it stops with INVALID_ARGUMENT once the prompt has
// more than max_prompt_tokens tokens, and with the call's status when
// `check` (the call's cancellation/deadline) says so, polled every few
// hundred pre-tokens.
//
// Thread ownership: stateless; the ServedModel's tokenizer is immutable.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/tokenizer/chat_template.h"
#include "coordinator/inference_backend.h"

namespace strata::coordinator::frontend {

struct PromptEncoding {
  bool add_special = true;    // BOS (and EOS) as the tokenizer says
  bool parse_special = false; // text prompts only: recognise control-token text
  // Non-OK stops encoding with that status (client gone, deadline passed).
  std::function<absl::Status()> check;
};

// FAILED_PRECONDITION when the model has no tokenizer.
absl::StatusOr<const Tokenizer*> ModelTokenizer(const ServedModel& model);

// `field` names the prompt in errors ("text", "input 'text_input'").
absl::StatusOr<std::vector<int32_t>> EncodeText(const ServedModel& model, absl::string_view text,
                                                const PromptEncoding& encoding, absl::string_view field);

// UNIMPLEMENTED with the model's chat_template_error when it has no supported
// template; INVALID_ARGUMENT naming `field`[i].role for a role other than
// system, user, assistant.
absl::StatusOr<std::vector<ChatSegment>> RenderChat(const ServedModel& model,
                                                    const std::vector<ChatMessage>& messages,
                                                    bool add_generation_prompt, absl::string_view field);

// RenderChat, then the segments encoded (encoding.parse_special is ignored:
// markup is parsed, content is not).
absl::StatusOr<std::vector<int32_t>> EncodeChat(const ServedModel& model,
                                                const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt, const PromptEncoding& encoding,
                                                absl::string_view field);

// INVALID_ARGUMENT naming `field`[i] and the id when an id is outside
// [0, vocab size).
absl::Status CheckTokenIds(const ServedModel& model, absl::Span<const int32_t> ids,
                           absl::string_view field);

}  // namespace strata::coordinator::frontend
