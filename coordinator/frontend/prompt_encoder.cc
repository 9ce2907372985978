#include "coordinator/frontend/prompt_encoder.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace strata::coordinator::frontend {

absl::StatusOr<const Tokenizer*> ModelTokenizer(const ServedModel& model) {
  if (model.tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", model.name, "' has no tokenizer loaded"));
  }
  return model.tokenizer;
}

absl::StatusOr<std::vector<int32_t>> EncodeText(const ServedModel& model, absl::string_view text,
                                                bool add_special) {
  ASSIGN_OR_RETURN(const Tokenizer* tokenizer, ModelTokenizer(model));
  return tokenizer->Encode(std::string_view(text.data(), text.size()), add_special,
                           /*parse_special=*/true);
}

absl::StatusOr<std::string> RenderChat(const ServedModel& model,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, absl::string_view field) {
  if (model.chat_template == nullptr) {
    return absl::UnimplementedError(
        model.chat_template_error.empty()
            ? absl::StrCat("model '", model.name, "' has no supported chat template")
            : model.chat_template_error);
  }
  if (messages.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at least one message is needed"));
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "].role is '", role, "'; expected system, user or assistant"));
    }
  }
  return model.chat_template->Apply(messages, add_generation_prompt);
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
