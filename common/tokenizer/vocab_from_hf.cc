// Tokenizer::FromHfFile: a Hugging Face tokenizer.json (model.type BPE) plus
// the tokenizer_config.json beside it when present.
//
// Supported: byte-level BPE (ByteLevel pre-tokenizer/decoder, optionally after
// Split regexes and Digits) and SentencePiece-style BPE (byte_fallback,
// Metaspace, or the Prepend/Replace U+2581 normalizers). Unicode
// normalizers (NFC, NFKC) are accepted but not applied: text that is already
// normalized, which is nearly all text, tokenizes identically.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode_bytes.h"

namespace strata {
namespace {

using nlohmann::json;
using tokenizer_internal::kSpaceMarker;

absl::StatusOr<json> ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (missing tokenizer file?)"));
  std::stringstream buf;
  buf << in.rdbuf();
  json j = json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  return j;
}

// Everything the tokenizer.json walk learns besides vocab and merges.
struct HfOptions {
  bool byte_level = false;   // ByteLevel seen
  bool sentencepiece = false;  // Metaspace / U+2581 normalizer / byte_fallback seen
  bool add_space_prefix = false;
  bool split_words = false;
  std::vector<std::string> regexes;
  std::string bos_text, eos_text;  // from the post-processor
  bool add_bos = false, add_eos = false;
};

class HfReader {
 public:
  explicit HfReader(std::string path) : path_(std::move(path)) {}

  absl::Status Invalid(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", field, ": ", what));
  }
  absl::Status Unsupported(const std::string& field, const std::string& what) const {
    return absl::UnimplementedError(absl::StrCat(path_, ": ", field, ": ", what, " is not supported"));
  }

  // Sequence-or-single walkers.
  absl::Status PreTokenizer(const json& pt, const std::string& field, HfOptions* o) const {
    if (pt.is_null()) return absl::OkStatus();
    if (!pt.is_object() || !pt.contains("type") || !pt["type"].is_string()) return Invalid(field, "expected an object with a type");
    const std::string type = pt["type"];
    if (type == "Sequence") {
      const json& seq = pt.contains("pretokenizers") ? pt["pretokenizers"] : json();
      if (!seq.is_array()) return Invalid(field + ".pretokenizers", "expected an array");
      for (size_t i = 0; i < seq.size(); ++i) {
        RETURN_IF_ERROR(PreTokenizer(seq[i], absl::StrCat(field, ".pretokenizers[", i, "]"), o));
      }
    } else if (type == "ByteLevel") {
      o->byte_level = true;
      if (pt.value("add_prefix_space", false) == true) return Unsupported(field + ".add_prefix_space", "true");
      if (pt.value("use_regex", true)) o->regexes.push_back(tokenizer_internal::kGpt2Regex);
    } else if (type == "Split") {
      const json& pattern = pt.contains("pattern") ? pt["pattern"] : json();
      if (pt.value("behavior", std::string("Isolated")) != "Isolated") {
        return Unsupported(field + ".behavior", pt["behavior"].dump());
      }
      if (pt.value("invert", false)) return Unsupported(field + ".invert", "true");
      if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
        o->regexes.push_back(pattern["Regex"]);
      } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
        o->regexes.push_back(absl::StrCat("\\Q", pattern["String"].get<std::string>(), "\\E"));
      } else {
        return Invalid(field + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
      }
    } else if (type == "Digits") {
      o->regexes.push_back(pt.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
    } else if (type == "Metaspace") {
      o->sentencepiece = true;
      if (pt.value("replacement", std::string(kSpaceMarker)) != kSpaceMarker) {
        return Unsupported(field + ".replacement", pt["replacement"].dump());
      }
      if (pt.contains("prepend_scheme") && pt["prepend_scheme"].is_string()) {
        // "first" prefixes only the text before the first special token;
        // treated as "always" (they differ only after special tokens).
        o->add_space_prefix = pt["prepend_scheme"] != "never";
      } else {
        o->add_space_prefix = pt.value("add_prefix_space", true);
      }
      o->split_words = pt.value("split", true);
    } else {
      return Unsupported(field + ".type", type);
    }
    return absl::OkStatus();
  }

  absl::Status Normalizer(const json& n, const std::string& field, HfOptions* o) const {
    if (n.is_null()) return absl::OkStatus();
    if (!n.is_object() || !n.contains("type") || !n["type"].is_string()) return Invalid(field, "expected an object with a type");
    const std::string type = n["type"];
    if (type == "Sequence") {
      const json& seq = n.contains("normalizers") ? n["normalizers"] : json();
      if (!seq.is_array()) return Invalid(field + ".normalizers", "expected an array");
      for (size_t i = 0; i < seq.size(); ++i) {
        RETURN_IF_ERROR(Normalizer(seq[i], absl::StrCat(field, ".normalizers[", i, "]"), o));
      }
    } else if (type == "Prepend") {
      if (n.value("prepend", std::string()) != kSpaceMarker) return Unsupported(field + ".prepend", n["prepend"].dump());
      o->sentencepiece = true;
      o->add_space_prefix = true;
    } else if (type == "Replace") {
      const json& pattern = n.contains("pattern") ? n["pattern"] : json();
      if (!(pattern.is_object() && pattern.value("String", std::string()) == " " &&
            n.value("content", std::string()) == kSpaceMarker)) {
        return Unsupported(field, "a Replace other than ' ' -> U+2581");
      }
      o->sentencepiece = true;
    } else if (type != "NFC" && type != "NFKC") {
      return Unsupported(field + ".type", type);
    }
    return absl::OkStatus();
  }

  void Decoder(const json& d, HfOptions* o) const {
    if (!d.is_object()) return;
    const std::string type = d.value("type", std::string());
    if (type == "ByteLevel") o->byte_level = true;
    if (type == "Metaspace" || type == "ByteFallback") o->sentencepiece = true;
    if (type == "Sequence" && d.contains("decoders") && d["decoders"].is_array()) {
      for (const json& x : d["decoders"]) Decoder(x, o);
    }
  }

  absl::Status PostProcessor(const json& p, const std::string& field, HfOptions* o) const {
    if (!p.is_object()) return absl::OkStatus();
    const std::string type = p.value("type", std::string());
    if (type == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
      for (size_t i = 0; i < p["processors"].size(); ++i) {
        RETURN_IF_ERROR(PostProcessor(p["processors"][i], absl::StrCat(field, ".processors[", i, "]"), o));
      }
    } else if (type == "TemplateProcessing") {
      const json& single = p.contains("single") ? p["single"] : json();
      if (!single.is_array()) return Invalid(field + ".single", "expected an array");
      bool seen_sequence = false;
      for (const json& item : single) {
        if (item.is_object() && item.contains("Sequence")) {
          seen_sequence = true;
        } else if (item.is_object() && item.contains("SpecialToken") && item["SpecialToken"].is_object()) {
          const std::string id = item["SpecialToken"].value("id", std::string());
          (seen_sequence ? o->eos_text : o->bos_text) = id;
          (seen_sequence ? o->add_eos : o->add_bos) = true;
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string path_;
};

// tokenizer_config.json's bos_token etc.: a string or {"content": ...}.
std::string TokenText(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return "";
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Build(const std::string& path, const json& root) {
  HfReader r(path);
  if (!root.is_object()) return r.Invalid("(root)", "expected an object");
  if (!root.contains("model") || !root["model"].is_object()) return r.Invalid("model", "missing or not an object");
  const json& model = root["model"];
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") return r.Unsupported("model.type", type);
  if (!model.contains("vocab") || !model["vocab"].is_object()) return r.Invalid("model.vocab", "missing or not an object");
  if (!model.contains("merges") || !model["merges"].is_array()) return r.Invalid("model.merges", "missing or not an array");

  // Vocab and added tokens, by id.
  constexpr int64_t kMaxVocab = 1 << 24;
  std::vector<std::pair<int64_t, std::string>> entries;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() >= kMaxVocab) {
      return r.Invalid(absl::StrCat("model.vocab[\"", it.key(), "\"]"), "expected an id in [0, 2^24)");
    }
    entries.emplace_back(it.value().get<int64_t>(), it.key());
  }
  struct Added {
    int64_t id;
    std::string content;
    bool special;
  };
  std::vector<Added> added;
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& at = root["added_tokens"];
    if (!at.is_array()) return r.Invalid("added_tokens", "expected an array");
    for (size_t i = 0; i < at.size(); ++i) {
      const json& t = at[i];
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
          !t["content"].is_string() || t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() >= kMaxVocab) {
        return r.Invalid(absl::StrCat("added_tokens[", i, "]"), "expected {id, content, special}");
      }
      added.push_back({t["id"].get<int64_t>(), t["content"].get<std::string>(), t.value("special", false)});
    }
  }
  int64_t size = 0;
  for (const auto& [id, text] : entries) size = std::max(size, id + 1);
  for (const Added& a : added) size = std::max(size, a.id + 1);

  VocabSpec spec;
  spec.tokens.resize(size);
  spec.token_types.assign(size, TokenType::kUnused);
  for (auto& [id, text] : entries) {
    spec.tokens[id] = std::move(text);
    spec.token_types[id] = TokenType::kNormal;
  }
  for (const Added& a : added) {
    spec.tokens[a.id] = a.content;
    spec.token_types[a.id] = a.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  for (int64_t id = 0; id < size; ++id) {
    if (spec.token_types[id] == TokenType::kUnused) spec.tokens[id] = absl::StrCat("<strata_unused_", id, ">");
  }

  // Merges: "a b" strings or ["a", "b"] pairs.
  const json& merges = model["merges"];
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      spec.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.push_back(absl::StrCat(m[0].get<std::string>(), " ", m[1].get<std::string>()));
    } else {
      return r.Invalid(absl::StrCat("model.merges[", i, "]"), "expected \"a b\" or [\"a\", \"b\"]");
    }
  }

  HfOptions o;
  RETURN_IF_ERROR(r.Normalizer(root.value("normalizer", json()), "normalizer", &o));
  RETURN_IF_ERROR(r.PreTokenizer(root.value("pre_tokenizer", json()), "pre_tokenizer", &o));
  r.Decoder(root.value("decoder", json()), &o);
  RETURN_IF_ERROR(r.PostProcessor(root.value("post_processor", json()), "post_processor", &o));
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>()) {
    o.sentencepiece = true;
  }
  if (o.sentencepiece) {
    spec.kind = TokenizerKind::kSentencePieceBpe;
    spec.add_space_prefix = o.add_space_prefix;
    spec.split_words = o.split_words;
    for (int64_t id = 0; id < size; ++id) {
      const std::string& t = spec.tokens[id];
      if (spec.token_types[id] == TokenType::kNormal && t.size() == 6 && t.rfind("<0x", 0) == 0) {
        spec.token_types[id] = TokenType::kByte;
      }
    }
  } else if (o.byte_level) {
    spec.kind = TokenizerKind::kByteLevelBpe;
    spec.pre = o.regexes.empty() ? "none" : "tokenizer.json";
    spec.pre_regexes = o.regexes;
  } else {
    return r.Invalid("pre_tokenizer", "names neither ByteLevel nor Metaspace, so the BPE kind is unknown");
  }
  spec.ignore_merges = model.value("ignore_merges", false);

  auto find = [&](const std::string& text) -> int32_t {
    if (text.empty()) return -1;
    for (int64_t id = 0; id < size; ++id) {
      if (spec.tokens[id] == text) return static_cast<int32_t>(id);
    }
    return -1;
  };
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    spec.unk_id = find(model["unk_token"]);
    if (spec.unk_id >= 0) spec.token_types[spec.unk_id] = TokenType::kUnknown;
  }
  spec.bos_id = find(o.bos_text);
  spec.eos_id = find(o.eos_text);
  spec.add_bos = o.add_bos && spec.bos_id >= 0;
  spec.add_eos = o.add_eos && spec.eos_id >= 0;

  // tokenizer_config.json: names bos/eos, add_*_token and the chat template.
  const std::string cfg_path = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  if (std::filesystem::exists(cfg_path)) {
    ASSIGN_OR_RETURN(json cfg, ReadJson(cfg_path));
    if (!cfg.is_object()) return absl::InvalidArgumentError(absl::StrCat(cfg_path, ": expected an object"));
    if (int32_t id = find(TokenText(cfg, "bos_token")); id >= 0) spec.bos_id = id;
    if (int32_t id = find(TokenText(cfg, "eos_token")); id >= 0) spec.eos_id = id;
    if (int32_t id = find(TokenText(cfg, "pad_token")); id >= 0) spec.pad_id = id;
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) spec.add_bos = cfg["add_bos_token"];
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) spec.add_eos = cfg["add_eos_token"];
    if (cfg.contains("chat_template")) {
      const json& ct = cfg["chat_template"];
      if (ct.is_string()) {
        spec.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{name, template}, ...]: the default one
        for (const json& t : ct) {
          if (t.is_object() && t.value("name", std::string()) == "default" && t.contains("template") &&
              t["template"].is_string()) {
            spec.chat_template = t["template"].get<std::string>();
          }
        }
      } else if (!ct.is_null()) {
        return absl::InvalidArgumentError(absl::StrCat(cfg_path, ": chat_template: expected a string or a list"));
      }
    }
    if (spec.add_bos && spec.bos_id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(cfg_path, ": add_bos_token without a bos_token in the vocab"));
    }
    if (spec.add_eos && spec.eos_id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(cfg_path, ": add_eos_token without an eos_token in the vocab"));
    }
  }
  if (spec.eos_id < 0) {
    for (const char* t : {"</s>", "<|end_of_text|>", "<|endoftext|>"}) {
      if ((spec.eos_id = find(t)) >= 0) break;
    }
  }

  auto tok = Tokenizer::Create(std::move(spec));
  if (!tok.ok()) return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  return tok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfFile(const std::string& tokenizer_json) {
  ASSIGN_OR_RETURN(json root, ReadJson(tokenizer_json));
  try {
    return Build(tokenizer_json, root);
  } catch (const json::exception& e) {  // a field of an unexpected type we did not check
    return absl::InvalidArgumentError(absl::StrCat(tokenizer_json, ": ", e.what()));
  }
}

}  // namespace strata
