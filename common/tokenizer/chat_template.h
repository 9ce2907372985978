// Chat prompt formatting. Models ship a Jinja template; Strata recognises the
// template families it supports (ChatML as in SmolLM2/Qwen2, Llama-3's header
// format, Llama-2/Mistral [INST]) from the template text and renders them
// natively rather than running a Jinja interpreter.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strata {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// One piece of a rendered chat prompt: the template's own text (markup:
// role headers, control tokens such as <|im_start|>) or a message's content
// (client text, which must be encoded without parsing special tokens, or a
// user could forge a system turn by writing "<|im_start|>system").
struct ChatSegment {
  std::string text;
  bool is_markup = false;
};

// kLlama2: [INST] with <<SYS>> (Llama 2 chat); kMistral: [INST] without a
// system block (Mistral Instruct; a system message is folded into the first
// user turn, which the original template rejects).
enum class ChatFormat { kChatMl, kLlama3, kLlama2, kMistral };

class ChatTemplate {
 public:
  // From the model's Jinja source; UNIMPLEMENTED naming the model's template
  // when it is not a recognised family. An empty template means ChatML.
  static absl::StatusOr<ChatTemplate> FromJinja(const std::string& jinja_source);
  explicit ChatTemplate(ChatFormat format, std::string default_system = "")
      : format_(format), default_system_(std::move(default_system)) {}

  ChatFormat format() const { return format_; }
  // The prompt text, ending with the assistant turn's header when
  // add_generation_prompt. Special-token text is included literally; encode
  // it with parse_special = true. The leading BOS is not included (the
  // tokenizer adds it); Llama-2/Mistral's later turns do include "<s>"/"</s>"
  // text as their templates do. Equals the Jinja rendering with the leading
  // bos_token removed.
  std::string Apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // The same text as Apply, as segments in order (adjacent segments of the
  // same kind merged). Roles are markup (callers accept only system, user and
  // assistant); contents and the template's default system prompt are not.
  std::vector<ChatSegment> Render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  ChatFormat format_;
  std::string default_system_;  // inserted when the template does so and none is given
};

}  // namespace strata
