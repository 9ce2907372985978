// Text <-> token ids for the model families Strata serves.
//
// Two algorithms:
//  - byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): the text is split by the
//    family's pre-tokenizer regex, each piece mapped to GPT-2 byte-unicode
//    symbols and merged by merge rank;
//  - SentencePiece-style BPE (Llama 2, Mistral): spaces become U+2581, an
//    optional leading space is added, pieces are merged by score, unknown
//    bytes fall back to <0xXX> byte tokens.
// Special/added tokens (control and user-defined types) are matched in the
// text first when parse_special is true, and never split.
//
// Thread safety: a Tokenizer is immutable after Create; all methods are const
// and may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace strata {

class GgufFile;

enum class TokenizerKind { kByteLevelBpe, kSentencePieceBpe };

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Everything needed to build a tokenizer, whatever file it came from.
struct VocabSpec {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  // Pre-tokenizer name as GGUF's tokenizer.ggml.pre spells it ("gpt2",
  // "llama-bpe", "qwen2", "smollm", "default", ...).
  std::string pre = "default";
  // When non-empty, these regexes (applied in order, see pre_tokenizer.h)
  // replace the ones `pre` names: Hugging Face tokenizer.json Split patterns.
  std::vector<std::string> pre_regexes;
  std::vector<std::string> tokens;
  std::vector<float> scores;          // SentencePiece; may be empty for BPE
  std::vector<TokenType> token_types; // empty: all normal
  std::vector<std::string> merges;    // byte-level BPE: "left right", rank order
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  std::vector<int32_t> eog_ids;       // end-of-generation tokens besides eos
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  // Byte-level: a pre-token that is itself in the vocab is emitted whole,
  // skipping merges (Llama-3; HF model.ignore_merges).
  bool ignore_merges = false;
  // SentencePiece: merge within U+2581-started words only instead of across
  // the whole text (HF Metaspace with split = true).
  bool split_words = false;
  std::string chat_template;          // Jinja source as shipped with the model
};

// A piece of text to encode and whether special-token text in it is
// recognised. Chat templates render to such segments so that the template's
// markup keeps its control tokens while message content (client text) never
// becomes one.
struct TextSegment {
  std::string_view text;
  bool parse_special = false;
};

// Bounds for encoding untrusted text (a client's prompt): encoding stops
// early instead of running to the end of a huge input.
struct EncodeLimits {
  // OUT_OF_RANGE once the output would hold more than this many ids (BOS/EOS
  // included); the caller names the limit for its client.
  size_t max_tokens = std::numeric_limits<size_t>::max();
  // Polled every kCheckEvery pre-tokens (and between special tokens); a
  // non-OK status stops encoding and is returned as is (the caller's
  // cancellation or deadline). May be empty.
  std::function<absl::Status()> check;
  static constexpr size_t kCheckEvery = 256;
};

class Tokenizer {
 public:
  // INVALID_ARGUMENT naming the field when the spec is inconsistent (sizes,
  // ids out of range, malformed merges, unknown pre-tokenizer). Besides
  // spec.eos_id and spec.eog_ids, tokens spelled <|eot_id|>, <|im_end|>,
  // <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, <|end_of_text|>, </s>
  // end generation when present (as llama.cpp does).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(VocabSpec spec);
  // From GGUF metadata (tokenizer.ggml.*, tokenizer.chat_template).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& gguf);
  // From a Hugging Face tokenizer.json (+ tokenizer_config.json beside it when
  // present, for bos/eos, add_bos and chat_template). NOT_FOUND naming the
  // path when it is missing, INVALID_ARGUMENT naming the field when malformed,
  // UNIMPLEMENTED for models other than BPE and unknown pre-tokenizers.
  // Not applied: NFC/NFKC normalizers (accepted), added tokens' lstrip/rstrip,
  // Metaspace prepend_scheme "first" (treated as "always": differs only in
  // text that follows a special token).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfFile(const std::string& tokenizer_json);
  ~Tokenizer();

  // add_special: prepend BOS / append EOS as the vocab says.
  // parse_special: recognise special-token text ("<|im_start|>") as one token.
  std::vector<int32_t> Encode(std::string_view text, bool add_special, bool parse_special) const;
  // Encode with bounds (see EncodeLimits). Same ids as Encode when it succeeds.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special, bool parse_special,
                                              const EncodeLimits& limits) const;
  // The segments encoded as one text: plain text runs on across segment
  // boundaries (so merges and pre-tokenizer splits are those of the
  // concatenation), but special-token text is recognised only where it lies
  // wholly inside a segment with parse_special.
  absl::StatusOr<std::vector<int32_t>> EncodeSegments(absl::Span<const TextSegment> segments, bool add_special,
                                                      const EncodeLimits& limits) const;
  // Concatenated bytes of the tokens (special tokens rendered unless
  // skip_special). May end in an incomplete UTF-8 sequence.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special) const;
  // The raw bytes one token stands for.
  std::string TokenBytes(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool add_bos() const;
  bool IsEndOfGeneration(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  // -1 when the text is not exactly one token.
  int32_t TokenId(std::string_view text) const;
  const std::string& chat_template() const;

  class Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
