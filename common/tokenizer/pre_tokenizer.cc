#include "common/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace strata::tokenizer_internal {

const char kGpt2Regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// Llama-3's pattern with the case-insensitive contractions, \p{N}{1,3}.
const char kLlama3Regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Qwen2: as Llama-3 but one digit per piece.
const char kQwen2Regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

absl::StatusOr<std::vector<std::string>> PreTokenizerRegexes(const std::string& pre) {
  // "default" is GPT-2's split: llama.cpp's own default list is an odd
  // historical mix, and GPT-2's is what byte-level vocabularies of unknown
  // origin were most likely trained with.
  if (pre == "gpt2" || pre == "default" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    return std::vector<std::string>{kGpt2Regex};
  }
  // SmolLM2 (StarCoder's tokenizer): Digits(individual) then ByteLevel.
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" ||
      pre == "codeshell" || pre == "exaone" || pre == "minerva-7b") {
    return std::vector<std::string>{"\\p{N}", kGpt2Regex};
  }
  if (pre == "llama-bpe" || pre == "llama3" || pre == "dbrx" || pre == "smaug-bpe") {
    return std::vector<std::string>{kLlama3Regex};
  }
  if (pre == "none") return std::vector<std::string>{};  // whole text is one piece
  if (pre == "qwen2" || pre == "stablelm2") return std::vector<std::string>{kQwen2Regex};
  return absl::UnimplementedError(absl::StrCat(
      "unsupported pre-tokenizer '", pre,
      "' (supported: default, gpt2, smollm, starcoder, llama-bpe, llama3, qwen2, stablelm2, ...)"));
}

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(const std::vector<std::string>& regexes) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  for (const std::string& pattern : regexes) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    auto regex = std::make_unique<Regex>();
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (regex->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return absl::InvalidArgumentError(absl::StrCat("pre-tokenizer regex '", pattern, "' does not compile at ",
                                                     offset, ": ", reinterpret_cast<const char*>(message)));
    }
    // JIT is an optimisation only; the interpreter gives the same matches.
    pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);
    pt->regexes_.push_back(std::move(regex));
  }
  return pt;
}

void PreTokenizer::Split(std::string_view text, std::vector<std::string_view>* pieces) const {
  if (text.empty()) return;
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex->code, nullptr);
    next.clear();
    for (std::string_view piece : current) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t start = 0;  // start of the not-yet-emitted text
      size_t from = 0;   // where the next search begins
      while (from < piece.size()) {
        const int rc = pcre2_match(regex->code, subject, piece.size(), from, 0, md, nullptr);
        if (rc < 0) break;  // no match (or a matcher limit): the rest is one gap
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        if (m1 == m0) {  // empty match: step one character and retry
          from = m1 + 1;
          while (from < piece.size() && (static_cast<uint8_t>(piece[from]) & 0xC0) == 0x80) ++from;
          continue;
        }
        if (m0 > start) next.push_back(piece.substr(start, m0 - start));
        next.push_back(piece.substr(m0, m1 - m0));
        start = from = m1;
      }
      if (start < piece.size()) next.push_back(piece.substr(start));
    }
    pcre2_match_data_free(md);
    current.swap(next);
  }
  pieces->insert(pieces->end(), current.begin(), current.end());
}

}  // namespace strata::tokenizer_internal
