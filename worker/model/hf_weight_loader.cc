// Llama-family weights from a Hugging Face checkpoint, by transformers' names.
// Safetensors shapes are outermost-first: a Linear weight is [out, in].
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/model_loader.h"
#include "worker/model/weight_loaders.h"

namespace strata {

namespace {

class HfWeightReader {
 public:
  explicit HfWeightReader(const HfCheckpoint& ckpt) : ckpt_(ckpt) {}

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

  absl::StatusOr<WeightMatrix> Matrix(const std::string& name, int64_t rows, int64_t cols) const {
    ASSIGN_OR_RETURN(const SafetensorsTensor* t, Find(name));
    if (t->shape.size() != 2 || t->shape[0] != rows || t->shape[1] != cols) {
      std::string shape;
      for (size_t i = 0; i < t->shape.size(); ++i) absl::StrAppend(&shape, i ? ", " : "", t->shape[i]);
      return absl::InvalidArgumentError(absl::StrCat(ckpt_.dir(), ": tensor '", name, "' has shape [",
                                                     shape, "], expected [", rows, ", ", cols, "]"));
    }
    WeightMatrix m;
    m.type = *t->type;
    m.data = t->data;
    m.rows = rows;
    m.cols = cols;
    ASSIGN_OR_RETURN(m.row_stride, RowBytes(m.type, cols));
    return m;
  }

  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) const {
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
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  ASSIGN_OR_RETURN(w->token_embd, r.Matrix("model.embed_tokens.weight", c.vocab_size, c.d_model));
  if (ckpt->FindTensor("lm_head.weight") != nullptr) {
    ASSIGN_OR_RETURN(w->output, r.Matrix("lm_head.weight", c.vocab_size, c.d_model));
  } else if (c.tied_embeddings) {
    w->output = w->token_embd;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        ckpt->dir(), ": missing tensor 'lm_head.weight' and tie_word_embeddings is false"));
  }
  ASSIGN_OR_RETURN(w->output_norm, r.Vector("model.norm.weight", c.d_model));
  w->layers.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w->layers[i];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    ASSIGN_OR_RETURN(l.attn_norm, r.Vector(p + "input_layernorm.weight", c.d_model));
    ASSIGN_OR_RETURN(l.wq, r.Matrix(p + "self_attn.q_proj.weight", q_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wk, r.Matrix(p + "self_attn.k_proj.weight", kv_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wv, r.Matrix(p + "self_attn.v_proj.weight", kv_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wo, r.Matrix(p + "self_attn.o_proj.weight", c.d_model, q_dim));
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(l.bq, r.Vector(p + "self_attn.q_proj.bias", q_dim));
      ASSIGN_OR_RETURN(l.bk, r.Vector(p + "self_attn.k_proj.bias", kv_dim));
      ASSIGN_OR_RETURN(l.bv, r.Vector(p + "self_attn.v_proj.bias", kv_dim));
    }
    ASSIGN_OR_RETURN(l.ffn_norm, r.Vector(p + "post_attention_layernorm.weight", c.d_model));
    ASSIGN_OR_RETURN(l.w_gate, r.Matrix(p + "mlp.gate_proj.weight", c.d_ff, c.d_model));
    ASSIGN_OR_RETURN(l.w_up, r.Matrix(p + "mlp.up_proj.weight", c.d_ff, c.d_model));
    ASSIGN_OR_RETURN(l.w_down, r.Matrix(p + "mlp.down_proj.weight", c.d_model, c.d_ff));
  }
  // HF stores Q/K unpermuted: RoPE rotates (i, i + d/2).
  config->rope_style = RopeStyle::kNeox;
  w->rope_inv_freq = RopeInverseFrequencies(c);
  w->keepalive.push_back(ckpt);
  return absl::OkStatus();
}

}  // namespace strata
