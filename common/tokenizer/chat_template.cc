// Recognises a model's chat-template family from its Jinja source and
// renders it natively. Each Render* mirrors the reference template quoted
// above it; tests compare against Python jinja2 on the real templates.
#include "common/tokenizer/chat_template.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace strata {
namespace {

bool Contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// Python's str.strip() / Jinja's trim for ASCII whitespace.
std::string Strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(kSpace) - b + 1));
}

// Strip() over the concatenation of `segments`, which keep their kinds.
void StripSegments(std::vector<ChatSegment>* segments) {
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  for (ChatSegment& s : *segments) {
    const size_t b = s.text.find_first_not_of(kSpace);
    s.text.erase(0, b == std::string::npos ? s.text.size() : b);
    if (!s.text.empty()) break;
  }
  for (auto it = segments->rbegin(); it != segments->rend(); ++it) {
    const size_t e = it->text.find_last_not_of(kSpace);
    it->text.erase(e == std::string::npos ? 0 : e + 1);
    if (!it->text.empty()) break;
  }
}

// The default system prompt of a ChatML template: the text of a string
// literal '<|im_start|>system\n...<|im_end|>' (SmolLM2's "You are a helpful AI
// assistant named SmolLM, ...", Qwen2's "You are a helpful assistant.").
// Empty when the template has none (its system block comes from a message).
std::string DefaultSystem(std::string_view src) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  for (size_t at = src.find(kOpen); at != std::string_view::npos; at = src.find(kOpen, at + 1)) {
    if (at == 0) continue;
    const char quote = src[at - 1];
    if (quote != '\'' && quote != '"') continue;
    size_t i = at + kOpen.size();
    if (src.substr(i, 1) == "\n") {
      i += 1;
    } else if (src.substr(i, 2) == "\\n") {
      i += 2;
    } else {
      continue;
    }
    std::string text;
    bool ok = false;
    while (i < src.size()) {
      if (src.substr(i, 10) == "<|im_end|>") {
        ok = true;
        break;
      }
      const char c = src[i];
      if (c == quote) break;  // the literal ends before <|im_end|>: not a default
      if (c == '\\' && i + 1 < src.size()) {
        const char e = src[i + 1];
        text += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        i += 2;
        continue;
      }
      text += c;
      ++i;
    }
    if (ok && !text.empty()) return text;
  }
  return "";
}

// Builds the segment list; markup and content alternate.
class Segments {
 public:
  Segments& Markup(std::string_view text) { return Add(text, true); }
  Segments& Content(std::string_view text) { return Add(text, false); }
  std::vector<ChatSegment> Take() { return std::move(segments_); }

 private:
  Segments& Add(std::string_view text, bool markup) {
    if (text.empty()) return *this;
    if (!segments_.empty() && segments_.back().is_markup == markup) {
      segments_.back().text.append(text);
    } else {
      segments_.push_back({std::string(text), markup});
    }
    return *this;
  }
  std::vector<ChatSegment> segments_;
};

// SmolLM2 / Qwen2:
//   {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}
//   {{ '<|im_start|>system\n<default><|im_end|>\n' }}{% endif %}
//   {{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}
//   {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
std::vector<ChatSegment> RenderChatMl(const std::vector<ChatMessage>& messages, bool gen,
                                      const std::string& default_system) {
  Segments out;
  if (!messages.empty() && messages[0].role != "system" && !default_system.empty()) {
    out.Markup("<|im_start|>system\n").Content(default_system).Markup("<|im_end|>\n");
  }
  for (const ChatMessage& m : messages) {
    out.Markup("<|im_start|>").Markup(m.role).Markup("\n").Content(m.content).Markup("<|im_end|>\n");
  }
  if (gen) out.Markup("<|im_start|>assistant\n");
  return out.Take();
}

// Llama 3 Instruct:
//   {% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] +
//   '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}
//   {% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}
//   {% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}
std::vector<ChatSegment> RenderLlama3(const std::vector<ChatMessage>& messages, bool gen) {
  Segments out;
  for (const ChatMessage& m : messages) {
    out.Markup("<|start_header_id|>").Markup(m.role).Markup("<|end_header_id|>\n\n");
    out.Content(Strip(m.content)).Markup("<|eot_id|>");
  }
  if (gen) out.Markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out.Take();
}

// Llama 2 chat: an optional leading system message goes into the first user
// turn as <<SYS>>\n...\n<</SYS>>\n\n; user turns are
// bos + '[INST] ' + content.strip() + ' [/INST]', assistant turns
// ' ' + content.strip() + ' ' + eos.
std::vector<ChatSegment> RenderLlama2(const std::vector<ChatMessage>& messages) {
  Segments out;
  size_t first = 0;
  std::string system;
  bool has_system = false;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    has_system = true;
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    // strip() applies to the whole content, <<SYS>> block included.
    std::vector<ChatSegment> content;
    if (i == first && has_system) {
      content = {{"<<SYS>>\n", true}, {system, false}, {"\n<</SYS>>\n\n", true}, {m.content, false}};
    } else {
      content = {{m.content, false}};
    }
    StripSegments(&content);
    if (m.role == "user") {
      out.Markup(i == first ? "" : "<s>").Markup("[INST] ");
      for (const ChatSegment& c : content) c.is_markup ? out.Markup(c.text) : out.Content(c.text);
      out.Markup(" [/INST]");
    } else if (m.role == "assistant") {
      out.Markup(" ");
      for (const ChatSegment& c : content) c.is_markup ? out.Markup(c.text) : out.Content(c.text);
      out.Markup(" </s>");
    }
  }
  return out.Take();
}

// Mistral Instruct v0.1: bos, then '[INST] ' + content + ' [/INST]' for user
// turns and content + eos for assistant turns (no strip, no system role).
std::vector<ChatSegment> RenderMistral(const std::vector<ChatMessage>& messages) {
  Segments out;
  std::string system;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system = m.content;
    } else if (m.role == "user") {
      out.Markup("[INST] ");
      if (!system.empty()) out.Content(system).Content("\n\n");
      out.Content(m.content).Markup(" [/INST]");
      system.clear();
    } else if (m.role == "assistant") {
      out.Content(m.content).Markup("</s>");
    }
  }
  return out.Take();
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::FromJinja(const std::string& src) {
  if (Strip(src).empty()) return ChatTemplate(ChatFormat::kChatMl);
  if (Contains(src, "<|im_start|>")) return ChatTemplate(ChatFormat::kChatMl, DefaultSystem(src));
  if (Contains(src, "<|start_header_id|>")) {
    if (Contains(src, "Cutting Knowledge Date") || Contains(src, "tools")) {
      return absl::UnimplementedError(
          "chat template: Llama 3.1+ templates (tools, knowledge-date system block) are not supported; "
          "Llama 3 (3.0) is");
    }
    return ChatTemplate(ChatFormat::kLlama3);
  }
  if (Contains(src, "[INST]")) {
    return ChatTemplate(Contains(src, "<<SYS>>") ? ChatFormat::kLlama2 : ChatFormat::kMistral);
  }
  return absl::UnimplementedError(absl::StrCat(
      "chat template not recognised (supported: ChatML, Llama 3, Llama 2/Mistral [INST]); it begins: ",
      src.substr(0, 120)));
}

std::string ChatTemplate::Apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out;
  for (const ChatSegment& s : Render(messages, add_generation_prompt)) out += s.text;
  return out;
}

std::vector<ChatSegment> ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt) const {
  switch (format_) {
    case ChatFormat::kChatMl:
      return RenderChatMl(messages, add_generation_prompt, default_system_);
    case ChatFormat::kLlama3:
      return RenderLlama3(messages, add_generation_prompt);
    case ChatFormat::kLlama2:
      return RenderLlama2(messages);
    case ChatFormat::kMistral:
      return RenderMistral(messages);
  }
  return {};
}

}  // namespace strata
