// Streams text for a growing sequence of token ids without ever emitting a
// partial UTF-8 character: bytes of an incomplete character are held back
// until the tokens that finish it arrive (or Flush() replaces them with U+FFFD).
#pragma once

#include <cstdint>
#include <string>

#include "common/tokenizer/tokenizer.h"

namespace strata {

class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive this object.
  IncrementalDetokenizer(const Tokenizer* tokenizer, bool skip_special);
  // Returns the newly complete text after appending `id` (possibly empty).
  std::string Push(int32_t id);
  // Returns whatever is held back, invalid bytes replaced with U+FFFD.
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace strata
