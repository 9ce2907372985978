// Byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): pre-tokenize with the
// family's regexes, map each piece's bytes to GPT-2 symbols (one token per
// byte to start with) and merge by rank.
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer_impl.h"
#include "common/tokenizer/unicode_bytes.h"

namespace strata {

void Tokenizer::Impl::EncodeByteLevel(std::string_view text, std::vector<int32_t>* out,
                                      EncodeBudget* budget) const {
  std::vector<std::string_view> pieces;
  pre_tokenizer->Split(text, &pieces);
  std::vector<int32_t> symbols;
  std::string spelled;
  for (std::string_view piece : pieces) {
    if (budget != nullptr && !budget->Continue(out->size())) return;
    if (spec.ignore_merges) {
      spelled = tokenizer_internal::BytesToUnicode(piece);
      if (int32_t id = Lookup(spelled); id >= 0) {
        out->push_back(id);
        continue;
      }
    }
    symbols.clear();
    for (char c : piece) symbols.push_back(byte_token[static_cast<uint8_t>(c)]);
    merges.MergeWord(&symbols);
    for (int32_t id : symbols) {
      // A byte without a symbol token (a vocab that lacks some of the 256)
      // becomes unk when there is one; there is nothing better to emit.
      if (id >= 0) {
        out->push_back(id);
      } else if (spec.unk_id >= 0) {
        out->push_back(spec.unk_id);
      }
    }
  }
}

}  // namespace strata
