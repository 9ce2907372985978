#include "coordinator/frontend/prompt_encoder.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/frontend/quote.h"

namespace strata::coordinator::frontend {
namespace {

EncodeLimits LimitsFor(const ServedModel& model, const PromptEncoding& encoding) {
  EncodeLimits limits;
  if (model.max_prompt_tokens > 0) limits.max_tokens = static_cast<size_t>(model.max_prompt_tokens);
  limits.check = encoding.check;
  return limits;
}

// The tokenizer's OUT_OF_RANGE (token limit) in the client's terms.
absl::Status NameLimit(absl::Status status, const ServedModel& model, absl::string_view field) {
  if (status.code() != absl::StatusCode::kOutOfRange) return status;
  return absl::InvalidArgumentError(absl::StrCat(field, ": the prompt has more than max_prompt_tokens = ",
                                                 model.max_prompt_tokens, " tokens (tokenizing stopped there)"));
}

}  // namespace

absl::StatusOr<const Tokenizer*> ModelTokenizer(const ServedModel& model) {
  if (model.tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", QuoteForError(model.name), " has no tokenizer loaded"));
  }
  return model.tokenizer;
}

absl::StatusOr<std::vector<int32_t>> EncodeText(const ServedModel& model, absl::string_view text,
                                                const PromptEncoding& encoding, absl::string_view field) {
  ASSIGN_OR_RETURN(const Tokenizer* tokenizer, ModelTokenizer(model));
  absl::StatusOr<std::vector<int32_t>> ids =
      tokenizer->Encode(std::string_view(text.data(), text.size()), encoding.add_special, encoding.parse_special,
                        LimitsFor(model, encoding));
  if (!ids.ok()) return NameLimit(ids.status(), model, field);
  return ids;
}

absl::StatusOr<std::vector<ChatSegment>> RenderChat(const ServedModel& model,
                                                    const std::vector<ChatMessage>& messages,
                                                    bool add_generation_prompt, absl::string_view field) {
  if (model.chat_template == nullptr) {
    return absl::UnimplementedError(
        model.chat_template_error.empty()
            ? absl::StrCat("model ", QuoteForError(model.name), " has no supported chat template")
            : model.chat_template_error);
  }
  if (messages.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at least one message is needed"));
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "].role is ", QuoteForError(role),
                                                     "; expected system, user or assistant"));
    }
  }
  return model.chat_template->Render(messages, add_generation_prompt);
}

absl::StatusOr<std::vector<int32_t>> EncodeChat(const ServedModel& model,
                                                const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt, const PromptEncoding& encoding,
                                                absl::string_view field) {
  ASSIGN_OR_RETURN(const Tokenizer* tokenizer, ModelTokenizer(model));
  ASSIGN_OR_RETURN(std::vector<ChatSegment> rendered, RenderChat(model, messages, add_generation_prompt, field));
  std::vector<TextSegment> segments;
  segments.reserve(rendered.size());
  for (const ChatSegment& s : rendered) segments.push_back({s.text, /*parse_special=*/s.is_markup});
  absl::StatusOr<std::vector<int32_t>> ids =
      tokenizer->EncodeSegments(segments, encoding.add_special, LimitsFor(model, encoding));
  if (!ids.ok()) return NameLimit(ids.status(), model, field);
  return ids;
}

absl::Status CheckTokenIds(const ServedModel& model, absl::Span<const int32_t> ids,
                           absl::string_view field) {
  ASSIGN_OR_RETURN(const Tokenizer* tokenizer, ModelTokenizer(model));
  const int32_t vocab = tokenizer->vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] = ", ids[i],
                                                     " is outside the vocabulary [0, ", vocab,
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::coordinator::frontend
