#include "common/tokenizer/incremental_detokenizer.h"

#include "common/tokenizer/unicode_bytes.h"

namespace strata {

// Token bytes are appended to pending_; everything up to the last character
// boundary that can still be completed is emitted. Invalid bytes are emitted
// as U+FFFD at once (more tokens cannot make them valid), so the output is
// always valid UTF-8.

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer* tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::Push(int32_t id) {
  if (skip_special_ && tokenizer_->IsSpecial(id)) return "";
  pending_ += tokenizer_->TokenBytes(id);
  const size_t complete = tokenizer_internal::CompleteUtf8PrefixLength(pending_);
  if (complete == 0) return "";
  std::string out = tokenizer_internal::SanitizeUtf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out = tokenizer_internal::SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace strata
