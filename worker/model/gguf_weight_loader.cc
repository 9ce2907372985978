// Llama-family weights from a GGUF file, by llama.cpp's tensor names.
// GGUF shapes are innermost-first: a [rows, cols] matrix has shape {cols, rows}.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/model_loader.h"
#include "worker/model/weight_loaders.h"

namespace strata {

namespace {

class GgufWeightReader {
 public:
  explicit GgufWeightReader(const GgufFile& f) : f_(f) {}

  absl::StatusOr<const GgufTensorInfo*> Find(const std::string& name) const {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(f_.name(), ": missing tensor '", name, "'"));
    }
    return t;
  }

  absl::StatusOr<WeightMatrix> Matrix(const std::string& name, int64_t rows, int64_t cols) const {
    ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(name));
    const std::string what = absl::StrCat(f_.name(), ": tensor '", name, "'");
    if (t->shape.size() != 2 || t->shape[0] != cols || t->shape[1] != rows) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeString(t->shape),
                                                     ", expected [", cols, ", ", rows, "]"));
    }
    RETURN_IF_ERROR(CheckMatrixType(t->type, what));
    WeightMatrix m;
    m.type = t->type;
    m.data = t->data;
    m.rows = rows;
    m.cols = cols;
    ASSIGN_OR_RETURN(m.row_stride, RowBytes(t->type, cols));
    return m;
  }

  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) const {
    ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(name));
    return ToFloatVector(t->type, t->data, t->num_elements, n,
                         absl::StrCat(f_.name(), ": tensor '", name, "'"));
  }

  static std::string ShapeString(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) absl::StrAppend(&out, i ? ", " : "", s[i]);
    return out + "]";
  }

 private:
  const GgufFile& f_;
};

}  // namespace

absl::Status LoadGgufWeights(std::shared_ptr<const GgufFile> gguf, ModelConfig* config,
                             ModelWeights* w) {
  const ModelConfig& c = *config;
  GgufWeightReader r(*gguf);
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  ASSIGN_OR_RETURN(w->token_embd, r.Matrix("token_embd.weight", c.vocab_size, c.d_model));
  if (gguf->FindTensor("output.weight") != nullptr) {
    ASSIGN_OR_RETURN(w->output, r.Matrix("output.weight", c.vocab_size, c.d_model));
    config->tied_embeddings = false;
  } else {
    w->output = w->token_embd;
    config->tied_embeddings = true;
  }
  ASSIGN_OR_RETURN(w->output_norm, r.Vector("output_norm.weight", c.d_model));
  w->layers.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w->layers[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    ASSIGN_OR_RETURN(l.attn_norm, r.Vector(p + "attn_norm.weight", c.d_model));
    ASSIGN_OR_RETURN(l.wq, r.Matrix(p + "attn_q.weight", q_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wk, r.Matrix(p + "attn_k.weight", kv_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wv, r.Matrix(p + "attn_v.weight", kv_dim, c.d_model));
    ASSIGN_OR_RETURN(l.wo, r.Matrix(p + "attn_output.weight", c.d_model, q_dim));
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(l.bq, r.Vector(p + "attn_q.bias", q_dim));
      ASSIGN_OR_RETURN(l.bk, r.Vector(p + "attn_k.bias", kv_dim));
      ASSIGN_OR_RETURN(l.bv, r.Vector(p + "attn_v.bias", kv_dim));
    }
    ASSIGN_OR_RETURN(l.ffn_norm, r.Vector(p + "ffn_norm.weight", c.d_model));
    ASSIGN_OR_RETURN(l.w_gate, r.Matrix(p + "ffn_gate.weight", c.d_ff, c.d_model));
    ASSIGN_OR_RETURN(l.w_up, r.Matrix(p + "ffn_up.weight", c.d_ff, c.d_model));
    ASSIGN_OR_RETURN(l.w_down, r.Matrix(p + "ffn_down.weight", c.d_model, c.d_ff));
  }
  w->rope_inv_freq = RopeInverseFrequencies(c);
  // Llama-3 style scaling: per-pair divisors computed by the converter.
  if (gguf->FindTensor("rope_freqs.weight") != nullptr) {
    ASSIGN_OR_RETURN(std::vector<float> factors, r.Vector("rope_freqs.weight", c.head_dim / 2));
    for (size_t i = 0; i < factors.size(); ++i) {
      if (!(factors[i] > 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(gguf->name(), ": rope_freqs.weight[", i, "] must be positive"));
      }
      w->rope_inv_freq[i] /= factors[i];
    }
  }
  w->keepalive.push_back(gguf);
  return absl::OkStatus();
}

}  // namespace strata
