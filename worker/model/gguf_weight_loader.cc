// Llama-family weights from a GGUF file, by llama.cpp's tensor names.
// GGUF shapes are innermost-first: a [rows, cols] matrix has shape {cols, rows}.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/model_loader.h"
#include "worker/model/weight_loaders.h"
#include "worker/model/weight_source.h"

namespace strata {

namespace {

class GgufWeightReader : public WeightSource {
 public:
  explicit GgufWeightReader(const GgufFile& f) : f_(f) {}

  bool Has(const std::string& name) const override { return f_.FindTensor(name) != nullptr; }

  // llama.cpp's names: blk.N.attn_q.weight, ...
  std::string LayerTensorName(int64_t layer, LayerTensor t) const override {
    static constexpr const char* kNames[] = {
        "attn_norm.weight", "attn_q.weight", "attn_k.weight",  "attn_v.weight",
        "attn_output.weight", "attn_q.bias", "attn_k.bias",    "attn_v.bias",
        "ffn_norm.weight",  "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
    return absl::StrCat("blk.", layer, ".", kNames[static_cast<int>(t)]);
  }

  absl::StatusOr<const GgufTensorInfo*> Find(const std::string& name) const {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(f_.name(), ": missing tensor '", name, "'"));
    }
    return t;
  }

  absl::StatusOr<WeightMatrix> Matrix(const std::string& name, int64_t rows,
                                      int64_t cols) const override {
    ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(name));
    const std::string what = absl::StrCat(f_.name(), ": tensor '", name, "'");
    if (t->shape.size() != 2 || t->shape[0] != cols || t->shape[1] != rows) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeString(t->shape),
                                                     ", expected [", cols, ", ", rows, "]"));
    }
    RETURN_IF_ERROR(CheckMatrixType(t->type, what));
    WeightMatrix m;
    m.file_mapped = true;
    m.type = t->type;
    m.data = t->data;
    m.rows = rows;
    m.cols = cols;
    ASSIGN_OR_RETURN(m.row_stride, RowBytes(t->type, cols));
    return m;
  }

  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) const override {
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
  ASSIGN_OR_RETURN(w->token_embd, r.Matrix("token_embd.weight", c.vocab_size, c.d_model));
  if (r.Has("output.weight")) {
    ASSIGN_OR_RETURN(w->output, r.Matrix("output.weight", c.vocab_size, c.d_model));
    config->tied_embeddings = false;
  } else {
    w->output = w->token_embd;
    config->tied_embeddings = true;
  }
  ASSIGN_OR_RETURN(w->output_norm, r.Vector("output_norm.weight", c.d_model));
  RETURN_IF_ERROR(LoadLayerWeights(r, c, w));
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
