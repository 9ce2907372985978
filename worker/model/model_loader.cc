#include "worker/model/model_loader.h"

#include <sys/stat.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/dequantize.h"
#include "common/status_macros.h"
#include "worker/model/weight_loaders.h"

namespace strata {

std::vector<float> RopeInverseFrequencies(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
    const RopeScaling& s = c.rope_scaling;
    if (s.type == RopeScaling::Type::kLinear) {
      f /= s.factor;
    } else if (s.type == RopeScaling::Type::kLlama3) {
      const double low_wavelen = s.original_context / s.low_freq_factor;
      const double high_wavelen = s.original_context / s.high_freq_factor;
      const double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (s.original_context / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv[i] = static_cast<float>(f);
  }
  return inv;
}

absl::StatusOr<std::vector<float>> ToFloatVector(TensorType type, const void* data,
                                                 int64_t num_elements, int64_t expected,
                                                 const std::string& what) {
  if (num_elements != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": has ", num_elements, " elements, expected ", expected));
  }
  if (type != TensorType::kF32 && type != TensorType::kF16 && type != TensorType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": type ", TensorTypeName(type),
                                                   " is not supported for a vector (F32/F16/BF16)"));
  }
  std::vector<float> out(expected);
  RETURN_IF_ERROR(DequantizeRow(type, data, out.data(), expected));
  return out;
}

absl::Status CheckMatrixType(TensorType type, const std::string& what) {
  if (!IsSupportedWeightType(type)) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": tensor type ", TensorTypeName(type),
        " is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LoadedModel>> LoadModel(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("model path '", path, "' does not exist"));
  }
  auto model = std::make_unique<LoadedModel>();
  model->path = path;
  if (S_ISDIR(st.st_mode)) {
    // Cheap checks first: a checkpoint without a tokenizer is unusable.
    const std::string tok_path = path + "/tokenizer.json";
    if (::stat(tok_path.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat(path, ": missing tokenizer (", tok_path, ")"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<HfCheckpoint> ckpt, HfCheckpoint::Open(path));
    std::shared_ptr<const HfCheckpoint> shared(std::move(ckpt));
    ASSIGN_OR_RETURN(model->config,
                     ModelConfig::FromHfConfigJson(shared->config_json(), path + "/config.json"));
    RETURN_IF_ERROR(LoadHfWeights(shared, &model->config, &model->weights));
    ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::FromHfFile(tok_path));
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf, GgufFile::Open(path));
    std::shared_ptr<const GgufFile> shared(std::move(gguf));
    ASSIGN_OR_RETURN(model->config, ModelConfig::FromGguf(*shared));
    RETURN_IF_ERROR(LoadGgufWeights(shared, &model->config, &model->weights));
    if (!shared->HasKey("tokenizer.ggml.tokens")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": missing tokenizer (no tokenizer.ggml.tokens metadata)"));
    }
    ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::FromGguf(*shared));
  }
  if (model->tokenizer->vocab_size() > model->config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tokenizer has ", model->tokenizer->vocab_size(),
                                                   " tokens but the model's vocabulary is ",
                                                   model->config.vocab_size));
  }
  return model;
}

}  // namespace strata
