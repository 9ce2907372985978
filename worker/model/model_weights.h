// The weights of a Llama-family model as the model runner uses them: matrices
// are views into the memory-mapped file in their stored type (quantized stays
// quantized); small vectors (norms, biases) are converted to f32 and owned.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/tensor_type.h"

namespace strata {

// A row-major [rows, cols] matrix: row r at data + r * row_stride bytes.
struct WeightMatrix {
  TensorType type = TensorType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // bytes
  // kF8E4M3 only: f32 [rows], row r's values are row_scales[r] * e4m3(code).
  // Where the matrix is (a backend pointer for backend weights).
  const float* row_scales = nullptr;
  // A view into a read-only private file mapping (LoadModel's matrices): its
  // pages may be handed back to the kernel after a copy (model_shard.h).
  bool file_mapped = false;
};

struct LayerWeights {
  std::vector<float> attn_norm;
  WeightMatrix wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;  // empty when the family has no QKV bias
  std::vector<float> ffn_norm;
  WeightMatrix w_gate, w_up, w_down;
};

struct ModelWeights {
  WeightMatrix token_embd;   // [vocab, d_model]
  WeightMatrix output;       // [vocab, d_model]; == token_embd when tied
  std::vector<float> output_norm;
  std::vector<LayerWeights> layers;
  std::vector<float> rope_inv_freq;  // [head_dim / 2], scaling applied
  // Keeps the mapped files (or converted buffers) alive as long as the views.
  std::vector<std::shared_ptr<const void>> keepalive;
};

}  // namespace strata
