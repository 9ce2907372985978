// Tokenizer: building the tables from a VocabSpec, special-token
// partitioning, BOS/EOS, decoding. The merge loops live in
// byte_level_bpe.cc and sentencepiece_bpe.cc; file readers in
// vocab_from_gguf.cc and vocab_from_hf.cc.
#include "common/tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/tokenizer_impl.h"
#include "common/tokenizer/unicode_bytes.h"

namespace strata {

using tokenizer_internal::kSpaceMarker;

namespace {

// Spellings llama.cpp treats as end of generation when the vocab has them.
constexpr std::string_view kEogSpellings[] = {
    "<|eot_id|>", "<|im_end|>",   "<|end|>",         "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>",        "<|end_of_text|>", "</s>",          "<end_of_utterance>",
};

// Parses "<0xAB>"; -1 otherwise.
int ParseByteToken(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else return -1;
  }
  return v;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer::Impl>> Tokenizer::Impl::Build(VocabSpec spec_in) {
  auto impl = std::make_unique<Impl>();
  impl->spec = std::move(spec_in);
  const VocabSpec& s = impl->spec;
  const int32_t n = static_cast<int32_t>(s.tokens.size());
  if (n == 0) return absl::InvalidArgumentError("tokenizer: empty vocabulary (tokens)");
  if (!s.scores.empty() && s.scores.size() != s.tokens.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: scores has ", s.scores.size(), " entries for ", n, " tokens"));
  }
  if (!s.token_types.empty() && s.token_types.size() != s.tokens.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: token_type has ", s.token_types.size(), " entries for ", n, " tokens"));
  }
  for (auto [name, id] : {std::pair<const char*, int32_t>{"bos", s.bos_id},
                          {"eos", s.eos_id}, {"unk", s.unk_id}, {"pad", s.pad_id}}) {
    if (id < -1 || id >= n) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", name, " id ", id, " outside the vocab of ", n));
    }
  }
  for (int32_t id : s.eog_ids) {
    if (id < 0 || id >= n) return absl::InvalidArgumentError(absl::StrCat("tokenizer: eog id ", id, " out of range"));
  }
  if (s.add_bos && s.bos_id < 0) return absl::InvalidArgumentError("tokenizer: add_bos without a bos id");
  if (s.add_eos && s.eos_id < 0) return absl::InvalidArgumentError("tokenizer: add_eos without an eos id");

  impl->token_to_id.reserve(n);
  for (int32_t id = 0; id < n; ++id) impl->token_to_id.try_emplace(s.tokens[id], id);

  const bool byte_level = s.kind == TokenizerKind::kByteLevelBpe;
  impl->byte_token.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (byte_level) {
      impl->byte_token[b] = impl->Lookup(tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)));
    } else {
      char spelling[8];
      std::snprintf(spelling, sizeof(spelling), "<0x%02X>", b);
      impl->byte_token[b] = impl->Lookup(spelling);
    }
  }

  // What each token decodes to, and which tokens are special.
  impl->token_bytes.resize(n);
  impl->is_special.assign(n, 0);
  for (int32_t id = 0; id < n; ++id) {
    const TokenType t = impl->type(id);
    const std::string& text = s.tokens[id];
    if (t == TokenType::kControl || t == TokenType::kUnknown) impl->is_special[id] = 1;
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown ||
        t == TokenType::kUnused) {
      impl->token_bytes[id] = text;  // stored verbatim
    } else if (byte_level) {
      impl->token_bytes[id] = tokenizer_internal::UnicodeToBytes(text);
    } else if (int b = ParseByteToken(text); b >= 0 && (t == TokenType::kByte || t == TokenType::kNormal ||
                                                       t == TokenType::kUndefined)) {
      impl->token_bytes[id] = std::string(1, static_cast<char>(b));
    } else {
      impl->token_bytes[id] = ReplaceAll(text, kSpaceMarker, " ");
    }
    if (t == TokenType::kControl || t == TokenType::kUnknown) {
      impl->specials.Add(text, id, /*always=*/false);
    } else if (t == TokenType::kUserDefined) {
      impl->specials.Add(text, id, /*always=*/true);
    }
  }

  impl->is_eog.assign(n, 0);
  if (s.eos_id >= 0) impl->is_eog[s.eos_id] = 1;
  for (int32_t id : s.eog_ids) impl->is_eog[id] = 1;
  for (std::string_view spelling : kEogSpellings) {
    if (int32_t id = impl->Lookup(spelling); id >= 0) impl->is_eog[id] = 1;
  }

  // Merge table.
  if (!s.merges.empty()) {
    for (size_t rank = 0; rank < s.merges.size(); ++rank) {
      const std::string& m = s.merges[rank];
      // Split at the first space after the first character (a merge's left
      // side may itself be a lone space in odd vocabs, as llama.cpp allows).
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("tokenizer: merges[", rank, "] '", m, "' is not 'left right'"));
      }
      const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
      const int32_t l = impl->Lookup(left), r = impl->Lookup(right);
      const int32_t result = impl->Lookup(std::string(left) + std::string(right));
      // Merges whose parts are not tokens can never fire on id symbols.
      if (l < 0 || r < 0 || result < 0) continue;
      impl->merges.Add(l, r, static_cast<float>(rank), result);
    }
  } else if (!byte_level) {
    // SentencePiece vocab without merges: any two adjacent pieces merge when
    // their concatenation is a piece; the higher its score the earlier.
    for (int32_t id = 0; id < n; ++id) {
      const TokenType t = impl->type(id);
      if (t != TokenType::kNormal && t != TokenType::kUndefined && t != TokenType::kUserDefined) continue;
      const std::string& text = s.tokens[id];
      const float score = s.scores.empty() ? 0.0f : s.scores[id];
      size_t pos = 0;
      tokenizer_internal::DecodeUtf8(text, &pos);
      while (pos < text.size()) {
        const int32_t l = impl->Lookup(std::string_view(text).substr(0, pos));
        const int32_t r = impl->Lookup(std::string_view(text).substr(pos));
        if (l >= 0 && r >= 0) impl->merges.Add(l, r, -score, id);
        tokenizer_internal::DecodeUtf8(text, &pos);
      }
    }
  }

  if (byte_level) {
    std::vector<std::string> regexes = s.pre_regexes;
    if (regexes.empty()) {
      ASSIGN_OR_RETURN(regexes, tokenizer_internal::PreTokenizerRegexes(s.pre));
    }
    ASSIGN_OR_RETURN(impl->pre_tokenizer, tokenizer_internal::PreTokenizer::Create(regexes));
  }
  return impl;
}

void Tokenizer::Impl::EncodeText(std::string_view text, bool after_special, std::vector<int32_t>* out,
                                 EncodeBudget* budget) const {
  if (spec.kind == TokenizerKind::kByteLevelBpe) {
    EncodeByteLevel(text, out, budget);
  } else {
    EncodeSentencePiece(text, spec.add_space_prefix && after_special, out, budget);
  }
}

bool EncodeBudget::Continue(size_t tokens_so_far) {
  if (!status_.ok()) return false;
  if (limits_ == nullptr) return true;
  if (tokens_so_far > limits_->max_tokens) {
    status_ = absl::OutOfRangeError(absl::StrCat("more than ", limits_->max_tokens, " tokens"));
    return false;
  }
  if (limits_->check && calls_++ % EncodeLimits::kCheckEvery == 0) status_ = limits_->check();
  return status_.ok();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(VocabSpec spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Impl::Build(std::move(spec)));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  const TextSegment segment{text, parse_special};
  // Unbounded: only the limits can fail.
  return *EncodeSegments(absl::MakeConstSpan(&segment, 1), add_special, EncodeLimits{});
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_special,
                                                       bool parse_special, const EncodeLimits& limits) const {
  const TextSegment segment{text, parse_special};
  return EncodeSegments(absl::MakeConstSpan(&segment, 1), add_special, limits);
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::EncodeSegments(absl::Span<const TextSegment> segments,
                                                               bool add_special,
                                                               const EncodeLimits& limits) const {
  EncodeBudget budget(&limits);
  std::vector<int32_t> out;
  size_t total = 0;
  for (const TextSegment& seg : segments) total += seg.text.size();
  out.reserve(std::min(total / 3 + 2, limits.max_tokens + 2));
  const VocabSpec& s = impl_->spec;
  if (add_special && s.add_bos) out.push_back(s.bos_id);
  // Plain text between special tokens; a view into the only segment it
  // spans, or a copy when it spans several.
  std::string joined;
  std::string_view pending;
  bool after_special = true;
  auto append = [&](std::string_view piece) {
    if (piece.empty()) return;
    if (pending.empty()) {
      pending = piece;
    } else {
      if (pending.data() != joined.data()) joined.assign(pending);
      joined.append(piece);
      pending = joined;
    }
  };
  auto flush = [&] {
    if (pending.empty()) return;
    impl_->EncodeText(pending, after_special, &out, &budget);
    after_special = false;
    pending = {};
    joined.clear();
  };
  for (const TextSegment& seg : segments) {
    const std::string_view text = seg.text;
    size_t pos = 0;
    while (pos < text.size()) {
      if (!budget.Continue(out.size())) return budget.status();
      const auto m = impl_->specials.FindNext(text, pos, seg.parse_special);
      const size_t end = m.id >= 0 ? m.begin : text.size();
      append(text.substr(pos, end - pos));
      if (m.id < 0) break;
      flush();
      out.push_back(m.id);
      after_special = true;
      pos = m.end;
    }
  }
  flush();
  if (add_special && s.add_eos) out.push_back(s.eos_id);
  if (!budget.Continue(out.size())) return budget.status();
  return out;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string out;
  // SentencePiece drops the space its encoder put before the first word.
  bool strip_space = impl_->spec.kind == TokenizerKind::kSentencePieceBpe && impl_->spec.add_space_prefix;
  for (int32_t id : ids) {
    if (!impl_->valid(id)) continue;
    if (skip_special && impl_->is_special[id]) continue;
    const std::string& bytes = impl_->token_bytes[id];
    if (bytes.empty()) continue;
    if (strip_space && bytes[0] == ' ') {
      out.append(bytes, 1);
    } else {
      out += bytes;
    }
    strip_space = false;
  }
  return out;
}

std::string Tokenizer::TokenBytes(int32_t id) const { return impl_->valid(id) ? impl_->token_bytes[id] : ""; }
int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->spec.tokens.size()); }
int32_t Tokenizer::bos_id() const { return impl_->spec.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->spec.eos_id; }
bool Tokenizer::add_bos() const { return impl_->spec.add_bos; }
bool Tokenizer::IsEndOfGeneration(int32_t id) const { return impl_->valid(id) && impl_->is_eog[id]; }
bool Tokenizer::IsSpecial(int32_t id) const { return impl_->valid(id) && impl_->is_special[id]; }
const std::string& Tokenizer::chat_template() const { return impl_->spec.chat_template; }

int32_t Tokenizer::TokenId(std::string_view text) const {
  // Special and added tokens by their text; others by the bytes they encode.
  if (int32_t id = impl_->Lookup(text); id >= 0) {
    const TokenType t = impl_->type(id);
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown ||
        impl_->token_bytes[id] == text) {
      return id;
    }
  }
  std::vector<int32_t> ids;
  impl_->EncodeText(text, /*after_special=*/false, &ids);
  return ids.size() == 1 ? ids[0] : -1;
}

}  // namespace strata
