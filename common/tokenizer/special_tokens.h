// Finds special/added token text ("<|im_start|>") in a prompt: leftmost
// match first, longest among those starting at the same byte (as Hugging
// Face's added-token splitter does).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::tokenizer_internal {

class SpecialTokenMatcher {
 public:
  // `always`: matched even when the caller does not parse special tokens
  // (user-defined added tokens, as llama.cpp and Hugging Face do).
  void Add(std::string_view text, int32_t id, bool always);
  bool empty() const { return nodes_.size() <= 1; }

  struct Match {
    size_t begin = 0, end = 0;
    int32_t id = -1;
  };
  // First match at or after `from`; id -1 when none.
  Match FindNext(std::string_view text, size_t from, bool parse_special) const;

 private:
  // Byte trie. children are sorted by byte for a binary search; the tries are
  // small (tens to a few hundred tokens).
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;
    int32_t id = -1;
    bool always = false;
  };
  int32_t Child(int32_t node, uint8_t byte) const;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

}  // namespace strata::tokenizer_internal
