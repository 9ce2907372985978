// Format-specific weight loaders behind LoadModel (model_loader.h).
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "common/format/gguf_file.h"
#include "common/format/safetensors_file.h"
#include "common/model_config.h"
#include "worker/model/model_weights.h"

namespace strata {

// Fills `weights` from llama.cpp tensor names (token_embd, blk.N.attn_q, ...).
// `config.tied_embeddings` is set when output.weight is absent.
absl::Status LoadGgufWeights(std::shared_ptr<const GgufFile> gguf, ModelConfig* config,
                             ModelWeights* weights);

// Fills `weights` from Hugging Face names (model.layers.N.self_attn.q_proj, ...).
absl::Status LoadHfWeights(std::shared_ptr<const HfCheckpoint> ckpt, ModelConfig* config,
                           ModelWeights* weights);

// Converts a 1-D F32/F16/BF16 tensor to f32, checking its length.
absl::StatusOr<std::vector<float>> ToFloatVector(TensorType type, const void* data,
                                                 int64_t num_elements, int64_t expected,
                                                 const std::string& what);

// Checks that the matmul kernels can read `type`.
absl::Status CheckMatrixType(TensorType type, const std::string& what);

}  // namespace strata
