// SentencePiece-style BPE (Llama 2, Mistral): spaces become U+2581, a space
// is prefixed to the text (add_space_prefix), the text is split into UTF-8
// characters and merged (by merge rank for Hugging Face vocabularies, by the
// merged piece's score for GGUF ones). Characters that are not pieces fall
// back to <0xXX> byte tokens, or unk when the vocab has no byte tokens.
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer_impl.h"
#include "common/tokenizer/unicode_bytes.h"

namespace strata {

using tokenizer_internal::kSpaceMarker;

namespace {

// Merges one word: runs of known characters are merged, unknown characters
// (which can never merge) fall back to bytes.
void EncodeWord(const Tokenizer::Impl& impl, std::string_view word, std::vector<int32_t>* out,
                EncodeBudget* budget) {
  std::vector<int32_t> run;
  auto flush = [&] {
    impl.merges.MergeWord(&run);
    out->insert(out->end(), run.begin(), run.end());
    run.clear();
  };
  size_t pos = 0;
  while (pos < word.size()) {
    if (budget != nullptr && !budget->Continue(out->size() + run.size())) return;
    const size_t start = pos;
    tokenizer_internal::DecodeUtf8(word, &pos);
    const std::string_view ch = word.substr(start, pos - start);
    const int32_t id = impl.Lookup(ch);
    if (id >= 0) {
      run.push_back(id);
      continue;
    }
    flush();
    for (char c : ch) {
      const int32_t b = impl.byte_token[static_cast<uint8_t>(c)];
      if (b >= 0) {
        out->push_back(b);
      } else if (impl.spec.unk_id >= 0) {
        out->push_back(impl.spec.unk_id);
        break;  // one unk per character
      }
    }
  }
  flush();
}

}  // namespace

void Tokenizer::Impl::EncodeSentencePiece(std::string_view text, bool add_prefix, std::vector<int32_t>* out,
                                          EncodeBudget* budget) const {
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 4 + 3);
  if (add_prefix) escaped.append(kSpaceMarker);
  for (char c : text) {
    if (c == ' ') {
      escaped.append(kSpaceMarker);
    } else {
      escaped.push_back(c);
    }
  }
  if (!spec.split_words) {
    EncodeWord(*this, escaped, out, budget);
    return;
  }
  // Words start at each U+2581 (HF Metaspace split: MergedWithNext).
  std::string_view rest = escaped;
  while (!rest.empty()) {
    size_t cut = rest.find(kSpaceMarker, 1);
    if (cut == std::string_view::npos) cut = rest.size();
    if (budget != nullptr && !budget->status().ok()) return;
    EncodeWord(*this, rest.substr(0, cut), out, budget);
    rest.remove_prefix(cut);
  }
}

}  // namespace strata
