#include "coordinator/model_metadata.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/format/gguf_file.h"
#include "common/format/safetensors_file.h"
#include "common/status_macros.h"

namespace strata::coordinator {

absl::StatusOr<std::unique_ptr<ModelMetadata>> LoadModelMetadata(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("model path '", path, "' does not exist"));
  }
  auto meta = std::make_unique<ModelMetadata>();
  meta->path = path;
  if (S_ISDIR(st.st_mode)) {
    const std::string tok_path = path + "/tokenizer.json";
    if (::stat(tok_path.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat(path, ": missing tokenizer (", tok_path, ")"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<HfCheckpoint> ckpt, HfCheckpoint::Open(path));
    ASSIGN_OR_RETURN(meta->config, ModelConfig::FromHfConfigJson(ckpt->config_json(), path + "/config.json"));
    ASSIGN_OR_RETURN(meta->tokenizer, Tokenizer::FromHfFile(tok_path));
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf, GgufFile::Open(path));
    ASSIGN_OR_RETURN(meta->config, ModelConfig::FromGguf(*gguf));
    if (!gguf->HasKey("tokenizer.ggml.tokens")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": missing tokenizer (no tokenizer.ggml.tokens metadata)"));
    }
    ASSIGN_OR_RETURN(meta->tokenizer, Tokenizer::FromGguf(*gguf));
  }
  if (meta->tokenizer->vocab_size() > meta->config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tokenizer has ", meta->tokenizer->vocab_size(),
                                                   " tokens but the model's vocabulary is ",
                                                   meta->config.vocab_size));
  }
  auto tmpl = ChatTemplate::FromJinja(meta->tokenizer->chat_template());
  if (tmpl.ok()) {
    meta->chat_template = *std::move(tmpl);
  } else {
    meta->chat_template_error = std::string(tmpl.status().message());
  }
  for (int32_t id = 0; id < meta->tokenizer->vocab_size(); ++id) {
    if (meta->tokenizer->IsEndOfGeneration(id)) meta->end_of_generation_ids.push_back(id);
  }
  return meta;
}

}  // namespace strata::coordinator
