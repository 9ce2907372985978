#include "common/model_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/format/gguf_file.h"
#include "common/status_macros.h"

namespace strata {

namespace {

bool IsSupportedArch(const std::string& arch) {
  return arch == "llama" || arch == "qwen2" || arch == "mistral";
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromGguf(const GgufFile& gguf) {
  ModelConfig c;
  ASSIGN_OR_RETURN(c.arch, gguf.GetString("general.architecture"));
  if (!IsSupportedArch(c.arch)) {
    return absl::UnimplementedError(absl::StrCat(gguf.name(), ": unsupported architecture '", c.arch,
                                                 "' (supported: llama, mistral, qwen2)"));
  }
  const std::string p = c.arch + ".";
  ASSIGN_OR_RETURN(c.n_layers, gguf.GetInt(p + "block_count"));
  ASSIGN_OR_RETURN(c.d_model, gguf.GetInt(p + "embedding_length"));
  ASSIGN_OR_RETURN(c.d_ff, gguf.GetInt(p + "feed_forward_length"));
  ASSIGN_OR_RETURN(c.n_heads, gguf.GetInt(p + "attention.head_count"));
  c.n_kv_heads = c.n_heads;
  if (gguf.HasKey(p + "attention.head_count_kv")) {
    ASSIGN_OR_RETURN(c.n_kv_heads, gguf.GetInt(p + "attention.head_count_kv"));
  }
  ASSIGN_OR_RETURN(c.context_length, gguf.GetInt(p + "context_length"));
  if (gguf.HasKey(p + "attention.layer_norm_rms_epsilon")) {
    ASSIGN_OR_RETURN(double eps, gguf.GetFloat(p + "attention.layer_norm_rms_epsilon"));
    c.rms_eps = static_cast<float>(eps);
  }
  if (gguf.HasKey(p + "rope.freq_base")) {
    ASSIGN_OR_RETURN(double theta, gguf.GetFloat(p + "rope.freq_base"));
    c.rope_theta = static_cast<float>(theta);
  }
  c.head_dim = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  if (gguf.HasKey(p + "attention.key_length")) {
    ASSIGN_OR_RETURN(c.head_dim, gguf.GetInt(p + "attention.key_length"));
  }
  if (gguf.HasKey(p + "rope.dimension_count")) {
    ASSIGN_OR_RETURN(int64_t rope_dims, gguf.GetInt(p + "rope.dimension_count"));
    if (rope_dims != c.head_dim) {
      return absl::UnimplementedError(absl::StrCat(gguf.name(), ": partial RoPE (", p,
                                                   "rope.dimension_count = ", rope_dims,
                                                   ", head dim ", c.head_dim, ") is not supported"));
    }
  }
  if (gguf.HasKey(p + "rope.scaling.type")) {
    ASSIGN_OR_RETURN(std::string type, gguf.GetString(p + "rope.scaling.type"));
    if (type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      ASSIGN_OR_RETURN(double f, gguf.GetFloat(p + "rope.scaling.factor"));
      c.rope_scaling.factor = static_cast<float>(f);
    } else if (type != "none") {
      return absl::UnimplementedError(
          absl::StrCat(gguf.name(), ": unsupported ", p, "rope.scaling.type '", type, "'"));
    }
  }
  // Llama-3 scaling arrives in GGUF as the rope_freqs.weight tensor (per-pair
  // divisors), which the weight loader picks up.
  if (gguf.HasKey(p + "vocab_size")) {
    ASSIGN_OR_RETURN(c.vocab_size, gguf.GetInt(p + "vocab_size"));
  } else {
    ASSIGN_OR_RETURN(std::vector<std::string> tokens, gguf.GetStringArray("tokenizer.ggml.tokens"));
    c.vocab_size = static_cast<int64_t>(tokens.size());
  }
  // llama.cpp's converter permutes Q/K of llama-style models so RoPE rotates
  // adjacent pairs; qwen2 is stored unpermuted (NEOX style).
  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kInterleaved;
  c.qkv_bias = c.arch == "qwen2";
  RETURN_IF_ERROR(c.Validate(gguf.name()));
  return c;
}

absl::StatusOr<ModelConfig> ModelConfig::FromHfConfigJson(const std::string& json_text,
                                                          const std::string& name) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not a JSON object"));
  }
  ModelConfig c;
  std::string model_type = j.value("model_type", "");
  if (model_type.empty() && j.contains("architectures") && j["architectures"].is_array() &&
      !j["architectures"].empty() && j["architectures"][0].is_string()) {
    const std::string a = j["architectures"][0];
    if (a == "LlamaForCausalLM") model_type = "llama";
    if (a == "MistralForCausalLM") model_type = "mistral";
    if (a == "Qwen2ForCausalLM") model_type = "qwen2";
  }
  c.arch = model_type;
  if (!IsSupportedArch(c.arch)) {
    return absl::UnimplementedError(absl::StrCat(name, ": unsupported model_type '", c.arch,
                                                 "' (supported: llama, mistral, qwen2)"));
  }
  auto get_int = [&](const char* key, int64_t* out, bool required) -> absl::Status {
    if (!j.contains(key) || j[key].is_null()) {
      return required ? absl::InvalidArgumentError(absl::StrCat(name, ": missing '", key, "'"))
                      : absl::OkStatus();
    }
    if (!j[key].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": '", key, "' must be an integer"));
    }
    *out = j[key].get<int64_t>();
    return absl::OkStatus();
  };
  auto get_float = [&](const nlohmann::json& obj, const char* key, float* out) -> absl::Status {
    if (!obj.contains(key) || obj[key].is_null()) return absl::OkStatus();
    if (!obj[key].is_number()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": '", key, "' must be a number"));
    }
    *out = obj[key].get<float>();
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(get_int("num_hidden_layers", &c.n_layers, true));
  RETURN_IF_ERROR(get_int("hidden_size", &c.d_model, true));
  RETURN_IF_ERROR(get_int("intermediate_size", &c.d_ff, true));
  RETURN_IF_ERROR(get_int("num_attention_heads", &c.n_heads, true));
  c.n_kv_heads = c.n_heads;
  RETURN_IF_ERROR(get_int("num_key_value_heads", &c.n_kv_heads, false));
  RETURN_IF_ERROR(get_int("vocab_size", &c.vocab_size, true));
  c.context_length = 4096;
  RETURN_IF_ERROR(get_int("max_position_embeddings", &c.context_length, false));
  c.head_dim = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  RETURN_IF_ERROR(get_int("head_dim", &c.head_dim, false));
  RETURN_IF_ERROR(get_float(j, "rms_norm_eps", &c.rms_eps));
  RETURN_IF_ERROR(get_float(j, "rope_theta", &c.rope_theta));
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  c.qkv_bias = c.arch == "qwen2" || j.value("attention_bias", false);
  c.rope_style = RopeStyle::kNeox;
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const auto& rs = j["rope_scaling"];
    std::string type = rs.value("rope_type", rs.value("type", ""));
    if (type == "llama3") {
      c.rope_scaling.type = RopeScaling::Type::kLlama3;
      RETURN_IF_ERROR(get_float(rs, "factor", &c.rope_scaling.factor));
      RETURN_IF_ERROR(get_float(rs, "low_freq_factor", &c.rope_scaling.low_freq_factor));
      RETURN_IF_ERROR(get_float(rs, "high_freq_factor", &c.rope_scaling.high_freq_factor));
      if (rs.contains("original_max_position_embeddings") &&
          rs["original_max_position_embeddings"].is_number_integer()) {
        c.rope_scaling.original_context = rs["original_max_position_embeddings"].get<int64_t>();
      }
    } else if (type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      RETURN_IF_ERROR(get_float(rs, "factor", &c.rope_scaling.factor));
    } else if (!type.empty() && type != "default") {
      return absl::UnimplementedError(
          absl::StrCat(name, ": unsupported rope_scaling type '", type, "'"));
    }
  }
  RETURN_IF_ERROR(c.Validate(name));
  return c;
}

absl::Status ModelConfig::Validate(const std::string& name) const {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", what));
  };
  if (n_layers <= 0 || n_layers > 1024) return bad(absl::StrCat("layer count ", n_layers, " out of range"));
  if (d_model <= 0 || d_model > (1 << 16)) return bad(absl::StrCat("hidden size ", d_model, " out of range"));
  if (d_ff <= 0 || d_ff > (1 << 18)) return bad(absl::StrCat("feed-forward size ", d_ff, " out of range"));
  if (n_heads <= 0 || n_heads > 1024) return bad(absl::StrCat("head count ", n_heads, " out of range"));
  if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0) {
    return bad(absl::StrCat("KV head count ", n_kv_heads, " must divide head count ", n_heads));
  }
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 1024) {
    return bad(absl::StrCat("head dim ", head_dim, " must be even and in (0, 1024]"));
  }
  if (vocab_size <= 0 || vocab_size > (1 << 24)) return bad(absl::StrCat("vocab size ", vocab_size, " out of range"));
  if (context_length <= 0) return bad(absl::StrCat("context length ", context_length, " must be positive"));
  if (!(rms_eps > 0) || !(rope_theta > 0)) return bad("rms eps and rope theta must be positive");
  return absl::OkStatus();
}

}  // namespace strata
