// Tokenizer::FromGguf: the tokenizer.ggml.* metadata llama.cpp's converters
// write, with llama.cpp's defaults for keys a file leaves out.
#include "absl/strings/str_cat.h"
#include "common/format/gguf_file.h"
#include "common/status_macros.h"
#include "common/tokenizer/tokenizer.h"

namespace strata {
namespace {

// Optional keys: NOT_FOUND leaves the default, a wrongly typed value is an error.
absl::Status ReadOptionalInt(const GgufFile& gguf, const char* key, int32_t* out) {
  auto v = gguf.GetInt(key);
  if (absl::IsNotFound(v.status())) return absl::OkStatus();
  if (!v.ok()) return v.status();
  // Some converters write -1 or UINT32_MAX for "none".
  *out = (*v < 0 || *v > INT32_MAX) ? -1 : static_cast<int32_t>(*v);
  return absl::OkStatus();
}

absl::Status ReadOptionalBool(const GgufFile& gguf, const char* key, bool* out) {
  auto v = gguf.GetBool(key);
  if (absl::IsNotFound(v.status())) return absl::OkStatus();
  if (!v.ok()) return v.status();
  *out = *v;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& gguf) {
  VocabSpec spec;
  ASSIGN_OR_RETURN(const std::string model, gguf.GetString("tokenizer.ggml.model"));
  if (model == "gpt2") {
    spec.kind = TokenizerKind::kByteLevelBpe;
    spec.add_bos = false;
    spec.add_space_prefix = false;
  } else if (model == "llama") {
    spec.kind = TokenizerKind::kSentencePieceBpe;
    spec.add_bos = true;
    spec.add_space_prefix = true;
    // llama.cpp's defaults for SentencePiece files that omit the ids.
    spec.bos_id = 1;
    spec.eos_id = 2;
    spec.unk_id = 0;
  } else {
    return absl::UnimplementedError(absl::StrCat(gguf.name(), ": tokenizer.ggml.model '", model,
                                                 "' is not supported (gpt2 and llama are)"));
  }
  if (auto pre = gguf.GetString("tokenizer.ggml.pre"); pre.ok()) {
    spec.pre = *pre;
  } else if (!absl::IsNotFound(pre.status())) {
    return pre.status();
  }
  if (spec.pre == "llama-bpe" || spec.pre == "llama3") {
    spec.ignore_merges = true;  // as Llama-3's tokenizer.json says
    spec.add_bos = true;
  }

  ASSIGN_OR_RETURN(spec.tokens, gguf.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n = spec.tokens.size();
  if (gguf.HasKey("tokenizer.ggml.scores")) {
    ASSIGN_OR_RETURN(spec.scores, gguf.GetFloatArray("tokenizer.ggml.scores"));
  }
  if (gguf.HasKey("tokenizer.ggml.token_type")) {
    ASSIGN_OR_RETURN(std::vector<int64_t> types, gguf.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat(gguf.name(), ": tokenizer.ggml.token_type has ", types.size(),
                                                     " entries for ", n, " tokens"));
    }
    spec.token_types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > 6) {
        return absl::InvalidArgumentError(
            absl::StrCat(gguf.name(), ": tokenizer.ggml.token_type[", i, "] = ", types[i], " is not a token type"));
      }
      spec.token_types.push_back(static_cast<TokenType>(types[i]));
    }
  }
  if (gguf.HasKey("tokenizer.ggml.merges")) {
    ASSIGN_OR_RETURN(spec.merges, gguf.GetStringArray("tokenizer.ggml.merges"));
  } else if (spec.kind == TokenizerKind::kByteLevelBpe) {
    return absl::InvalidArgumentError(absl::StrCat(gguf.name(), ": gpt2 tokenizer without tokenizer.ggml.merges"));
  }

  RETURN_IF_ERROR(ReadOptionalInt(gguf, "tokenizer.ggml.bos_token_id", &spec.bos_id));
  RETURN_IF_ERROR(ReadOptionalInt(gguf, "tokenizer.ggml.eos_token_id", &spec.eos_id));
  RETURN_IF_ERROR(ReadOptionalInt(gguf, "tokenizer.ggml.unknown_token_id", &spec.unk_id));
  RETURN_IF_ERROR(ReadOptionalInt(gguf, "tokenizer.ggml.padding_token_id", &spec.pad_id));
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    int32_t id = -1;
    RETURN_IF_ERROR(ReadOptionalInt(gguf, key, &id));
    if (id >= 0) spec.eog_ids.push_back(id);
  }
  RETURN_IF_ERROR(ReadOptionalBool(gguf, "tokenizer.ggml.add_bos_token", &spec.add_bos));
  RETURN_IF_ERROR(ReadOptionalBool(gguf, "tokenizer.ggml.add_eos_token", &spec.add_eos));
  RETURN_IF_ERROR(ReadOptionalBool(gguf, "tokenizer.ggml.add_space_prefix", &spec.add_space_prefix));
  if (auto tmpl = gguf.GetString("tokenizer.chat_template"); tmpl.ok()) {
    spec.chat_template = *std::move(tmpl);
  } else if (!absl::IsNotFound(tmpl.status())) {
    return tmpl.status();
  }

  // Ids outside the vocab (seen in hand-edited files) would fail Create; the
  // file is still usable without them.
  const int32_t size = static_cast<int32_t>(n);
  for (int32_t* id : {&spec.bos_id, &spec.eos_id, &spec.unk_id, &spec.pad_id}) {
    if (*id >= size) *id = -1;
  }
  if (spec.bos_id < 0) spec.add_bos = false;
  if (spec.eos_id < 0) spec.add_eos = false;
  std::erase_if(spec.eog_ids, [&](int32_t id) { return id >= size; });

  auto tok = Create(std::move(spec));
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(gguf.name(), ": ", tok.status().message()));
  }
  return tok;
}

}  // namespace strata
