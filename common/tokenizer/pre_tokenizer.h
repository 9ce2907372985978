// Pre-tokenizer: splits text into the pieces that byte-level BPE merges
// within, by a sequence of regexes (PCRE2, UTF + UCP).
//
// Semantics follow llama.cpp's unicode_regex_split and Hugging Face's
// Split(behavior = Isolated): each regex is applied to every piece produced
// by the previous one; both the matches and the text between them become
// pieces, so no byte is ever dropped. Invalid UTF-8 never matches
// (PCRE2_MATCH_INVALID_UTF) and stays in the gaps.
//
// Thread safety: immutable after Create; Split may be called concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::tokenizer_internal {

// The regex list for a GGUF tokenizer.ggml.pre name; UNIMPLEMENTED naming it
// when unknown.
absl::StatusOr<std::vector<std::string>> PreTokenizerRegexes(const std::string& pre);

// GPT-2's pattern as Hugging Face's ByteLevel pre-tokenizer spells it.
extern const char kGpt2Regex[];

class PreTokenizer {
 public:
  // INVALID_ARGUMENT naming the pattern when one does not compile. An empty
  // list keeps the text as a single piece.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(const std::vector<std::string>& regexes);
  ~PreTokenizer();

  // Appends the pieces of `text` (views into it) to `pieces`.
  void Split(std::string_view text, std::vector<std::string_view>* pieces) const;

 private:
  struct Regex;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace strata::tokenizer_internal
