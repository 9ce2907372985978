// The per-layer part of weight loading, shared by every file format.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/weight_source.h"

namespace strata {

absl::Status LoadLayerWeights(const WeightSource& src, const ModelConfig& c, ModelWeights* w) {
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  w->layers.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w->layers[i];
    auto name = [&](LayerTensor t) { return src.LayerTensorName(i, t); };
    ASSIGN_OR_RETURN(l.attn_norm, src.Vector(name(LayerTensor::kAttnNorm), c.d_model));
    ASSIGN_OR_RETURN(l.wq, src.Matrix(name(LayerTensor::kQ), q_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wk, src.Matrix(name(LayerTensor::kK), kv_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wv, src.Matrix(name(LayerTensor::kV), kv_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wo, src.Matrix(name(LayerTensor::kO), c.d_model, q_dim));
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(l.bq, src.Vector(name(LayerTensor::kQBias), q_dim));
      ASSIGN_OR_RETURN(l.bk, src.Vector(name(LayerTensor::kKBias), kv_dim));
      ASSIGN_OR_RETURN(l.bv, src.Vector(name(LayerTensor::kVBias), kv_dim));
    }
    ASSIGN_OR_RETURN(l.ffn_norm, src.Vector(name(LayerTensor::kFfnNorm), c.d_model));
    ASSIGN_OR_RETURN(l.w_gate, src.Matrix(name(LayerTensor::kGate), c.d_ff, c.d_model));
    ASSIGN_OR_RETURN(l.w_up, src.Matrix(name(LayerTensor::kUp), c.d_ff, c.d_model));
    ASSIGN_OR_RETURN(l.w_down, src.Matrix(name(LayerTensor::kDown), c.d_model, c.d_ff));
  }
  return absl::OkStatus();
}

}  // namespace strata
