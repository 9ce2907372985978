// Loads a model for serving: a GGUF file, or a Hugging Face checkpoint
// directory (config.json + safetensors + tokenizer.json). Returns the
// hyper-parameters, weight views and tokenizer, or an error naming the file,
// tensor or limit that is wrong.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/tokenizer/tokenizer.h"
#include "worker/model/model_weights.h"

namespace strata {

struct LoadedModel {
  std::string path;
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
};

absl::StatusOr<std::unique_ptr<LoadedModel>> LoadModel(const std::string& path);

// Per-pair RoPE inverse frequencies: theta^(-2i/d), then linear or Llama-3
// scaling as configured (the HF rule; GGUF files carry Llama-3 factors as the
// rope_freqs.weight tensor instead, applied by the GGUF loader).
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

}  // namespace strata
