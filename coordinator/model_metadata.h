// What the coordinator needs to know about a served model without loading its
// weights: the architecture's config (context length, vocabulary), the
// tokenizer, the chat template and the token ids that end generation.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"

namespace strata::coordinator {

struct ModelMetadata {
  std::string path;
  ModelConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;  // empty when unsupported
  std::string chat_template_error;            // why it is empty
  std::vector<int32_t> end_of_generation_ids;
};

// Reads a GGUF file or a Hugging Face checkpoint directory (config.json +
// tokenizer.json). NOT_FOUND / INVALID_ARGUMENT naming the file otherwise.
absl::StatusOr<std::unique_ptr<ModelMetadata>> LoadModelMetadata(const std::string& path);

}  // namespace strata::coordinator
