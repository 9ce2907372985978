#include "common/tokenizer/special_tokens.h"

#include <algorithm>

namespace strata::tokenizer_internal {

int32_t SpecialTokenMatcher::Child(int32_t node, uint8_t byte) const {
  const auto& ch = nodes_[node].children;
  auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(byte, int32_t{-1}));
  return it != ch.end() && it->first == byte ? it->second : -1;
}

void SpecialTokenMatcher::Add(std::string_view text, int32_t id, bool always) {
  if (text.empty()) return;
  int32_t node = 0;
  for (char c : text) {
    const auto b = static_cast<uint8_t>(c);
    int32_t child = Child(node, b);
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& ch = nodes_[node].children;
      ch.insert(std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t{-1})), {b, child});
    }
    node = child;
  }
  first_byte_[static_cast<uint8_t>(text[0])] = true;
  if (nodes_[node].id < 0) {  // the first token with a given text wins
    nodes_[node].id = id;
    nodes_[node].always = always;
  }
}

SpecialTokenMatcher::Match SpecialTokenMatcher::FindNext(std::string_view text, size_t from,
                                                         bool parse_special) const {
  for (size_t i = from; i < text.size(); ++i) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) continue;
    Match best;
    int32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      node = Child(node, static_cast<uint8_t>(text[j]));
      if (node < 0) break;
      const Node& n = nodes_[node];
      if (n.id >= 0 && (parse_special || n.always)) best = {i, j + 1, n.id};
    }
    if (best.id >= 0) return best;
  }
  return {};
}

}  // namespace strata::tokenizer_internal
