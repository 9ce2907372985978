// What the Llama-family weight loading needs from a model file, whatever its
// format: tensors by name as matrices (views in their stored type) or as f32
// vectors, and the file's naming of each per-layer tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/model/model_weights.h"

namespace strata {

enum class LayerTensor {
  kAttnNorm,
  kQ,
  kK,
  kV,
  kO,
  kQBias,
  kKBias,
  kVBias,
  kFfnNorm,
  kGate,
  kUp,
  kDown,
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool Has(const std::string& name) const = 0;
  // A [rows, cols] matrix the matmul kernels can read; errors name the file,
  // the tensor and the expected shape or supported types.
  virtual absl::StatusOr<WeightMatrix> Matrix(const std::string& name, int64_t rows,
                                              int64_t cols) const = 0;
  // A 1-D F32/F16/BF16 tensor of n elements, converted to f32.
  virtual absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) const = 0;
  // The file's name for a tensor of layer `layer`.
  virtual std::string LayerTensorName(int64_t layer, LayerTensor t) const = 0;
};

// Loads every layer's norms, projections and (when config.qkv_bias) biases.
absl::Status LoadLayerWeights(const WeightSource& source, const ModelConfig& config,
                              ModelWeights* weights);

}  // namespace strata
