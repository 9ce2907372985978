// Internal state of a Tokenizer (shared by tokenizer.cc, byte_level_bpe.cc,
// sentencepiece_bpe.cc). Built once by Tokenizer::Create, immutable after.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/tokenizer/bpe_merge.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/special_tokens.h"
#include "common/tokenizer/tokenizer.h"

namespace strata {

// Tracks EncodeLimits while encoding. Continue() is cheap: it counts and
// polls limits.check every EncodeLimits::kCheckEvery calls.
class EncodeBudget {
 public:
  explicit EncodeBudget(const EncodeLimits* limits) : limits_(limits) {}
  // False when encoding must stop; status() says why.
  bool Continue(size_t tokens_so_far);
  const absl::Status& status() const { return status_; }

 private:
  const EncodeLimits* limits_;  // null: unbounded
  size_t calls_ = 0;
  absl::Status status_;
};

class Tokenizer::Impl {
 public:
  // Validates `spec` and builds the lookup tables.
  static absl::StatusOr<std::unique_ptr<Impl>> Build(VocabSpec spec);

  // Plain text (no special-token matching). `after_special`: the text starts
  // the prompt or follows a special token (SentencePiece adds its space
  // prefix there, as llama.cpp does).
  // `budget` may be null (unbounded); when it says stop, these return early
  // with a partial `out`.
  void EncodeText(std::string_view text, bool after_special, std::vector<int32_t>* out,
                  EncodeBudget* budget = nullptr) const;
  void EncodeByteLevel(std::string_view text, std::vector<int32_t>* out, EncodeBudget* budget) const;
  void EncodeSentencePiece(std::string_view text, bool add_prefix, std::vector<int32_t>* out,
                           EncodeBudget* budget) const;

  int32_t Lookup(std::string_view spelling) const {
    auto it = token_to_id.find(spelling);
    return it == token_to_id.end() ? -1 : it->second;
  }
  TokenType type(int32_t id) const {
    return spec.token_types.empty() ? TokenType::kNormal : spec.token_types[id];
  }
  bool valid(int32_t id) const { return id >= 0 && id < static_cast<int32_t>(spec.tokens.size()); }

  VocabSpec spec;
  // Vocab spelling (GPT-2 symbols / U+2581 as stored) -> id; views into spec.tokens.
  absl::flat_hash_map<std::string_view, int32_t> token_to_id;
  std::vector<std::string> token_bytes;  // what each token decodes to
  std::vector<uint8_t> is_special;       // control / unknown
  std::vector<uint8_t> is_eog;
  tokenizer_internal::MergeTable merges;
  std::unique_ptr<tokenizer_internal::PreTokenizer> pre_tokenizer;  // byte-level only
  tokenizer_internal::SpecialTokenMatcher specials;
  // Byte-level: the token of each byte's GPT-2 symbol. SentencePiece: the
  // <0xXX> byte-fallback token. -1 when the vocab lacks it.
  std::array<int32_t, 256> byte_token{};
};

}  // namespace strata
