// Llama-family weights from a Hugging Face checkpoint, by transformers' names.
// Safetensors shapes are outermost-first: a Linear weight is [out, in].
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/model_loader.h"
#include "worker/model/weight_loaders.h"
#include "worker/model/weight_source.h"

namespace strata {

namespace {

class HfWeightReader : public WeightSource {
 public:
  explicit HfWeightReader(const HfCheckpoint& ckpt) : ckpt_(ckpt) {}

  bool Has(const std::string& name) const override { return ckpt_.FindTensor(name) != nullptr; }

  // transformers' names: model.layers.N.self_attn.q_proj.weight, ...
  std::string LayerTensorName(int64_t layer, LayerTensor t) const override {
    static constexpr const char* kNames[] = {
        "input_layernorm.weight",  "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "self_attn.q_proj.bias",
        "self_attn.k_proj.bias",   "self_attn.v_proj.bias",   "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight"};
    return absl::StrCat("model.layers.", layer, ".", kNames[static_cast<int>(t)]);
  }

  absl::StatusOr<const SafetensorsTensor*> Find(const std::string& name) const {
    const SafetensorsTensor* t = ckpt_.FindTensor(name);
    if (t == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(ckpt_.dir(), ": missing tensor '", name, "'"));
    }
    if (!t->type.has_value()) {
      return absl::UnimplementedError(absl::StrCat(ckpt_.dir(), ": tensor '", name, "' has dtype ",
                                                   t->dtype, " (supported: F32, F16, BF16)"));
    }
    return t;
  }

  absl::StatusOr<WeightMatrix> Matrix(const std::string& name, int64_t rows,
                                      int64_t cols) const override {
    ASSIGN_OR_RETURN(const SafetensorsTensor* t, Find(name));
    if (t->shape.size() != 2 || t->shape[0] != rows || t->shape[1] != cols) {
      std::string shape;
      for (size_t i = 0; i < t->shape.size(); ++i) absl::StrAppend(&shape, i ? ", " : "", t->shape[i]);
      return absl::InvalidArgumentError(absl::StrCat(ckpt_.dir(), ": tensor '", name, "' has shape [",
                                                     shape, "], expected [", rows, ", ", cols, "]"));
    }
    WeightMatrix m;
    m.file_mapped = true;
    m.type = *t->type;
    m.data = t->data;
    m.rows = rows;
    m.cols = cols;
    ASSIGN_OR_RETURN(m.row_stride, RowBytes(m.type, cols));
    return m;
  }

  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) const override {
    ASSIGN_OR_RETURN(const SafetensorsTensor* t, Find(name));
    return ToFloatVector(*t->type, t->data, t->num_elements, n,
                         absl::StrCat(ckpt_.dir(), ": tensor '", name, "'"));
  }

 private:
  const HfCheckpoint& ckpt_;
};

}  // namespace

absl::Status LoadHfWeights(std::shared_ptr<const HfCheckpoint> ckpt, ModelConfig* config,
                           ModelWeights* w) {
  const ModelConfig& c = *config;
  HfWeightReader r(*ckpt);
  ASSIGN_OR_RETURN(w->token_embd, r.Matrix("model.embed_tokens.weight", c.vocab_size, c.d_model));
  if (r.Has("lm_head.weight")) {
    ASSIGN_OR_RETURN(w->output, r.Matrix("lm_head.weight", c.vocab_size, c.d_model));
  } else if (c.tied_embeddings) {
    w->output = w->token_embd;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        ckpt->dir(), ": missing tensor 'lm_head.weight' and tie_word_embeddings is false"));
  }
  ASSIGN_OR_RETURN(w->output_norm, r.Vector("model.norm.weight", c.d_model));
  RETURN_IF_ERROR(LoadLayerWeights(r, c, w));
  // HF stores Q/K unpermuted: RoPE rotates (i, i + d/2).
  config->rope_style = RopeStyle::kNeox;
  w->rope_inv_freq = RopeInverseFrequencies(c);
  w->keepalive.push_back(ckpt);
  return absl::OkStatus();
}

}  // namespace strata
