// Hyper-parameters of a Llama-family model, read from GGUF metadata or a
// Hugging Face config.json. Shared by the coordinator (context length, vocab)
// and the workers (shapes).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace strata {

class GgufFile;

// Which pairs of a head's dimensions RoPE rotates together.
enum class RopeStyle {
  kInterleaved,  // (2i, 2i+1): GGUF llama (the converter permutes Q/K rows)
  kNeox,         // (i, i + d/2): HF checkpoints, GGUF qwen2
};

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_context = 8192;
};

struct ModelConfig {
  std::string arch;  // "llama", "qwen2", "mistral"
  int64_t n_layers = 0;
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t d_ff = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::kInterleaved;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;  // filled by the weight loader when it knows
  bool qkv_bias = false;

  static absl::StatusOr<ModelConfig> FromGguf(const GgufFile& gguf);
  // `json_text` is config.json; `name` is used in error messages.
  static absl::StatusOr<ModelConfig> FromHfConfigJson(const std::string& json_text,
                                                     const std::string& name);
  // Checks internal consistency (heads divide d_model, GQA ratio, ...).
  absl::Status Validate(const std::string& name) const;
};

}  // namespace strata
