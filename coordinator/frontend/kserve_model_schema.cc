#include "coordinator/frontend/kserve_model_schema.h"

#include <string>

namespace strata::coordinator::frontend {
namespace {

using inference::DataType;

constexpr TensorSpec Bytes(const char* n, int64_t dim, bool opt) {
  return {n, "BYTES", DataType::TYPE_STRING, dim, opt};
}
constexpr TensorSpec Bool(const char* n) { return {n, "BOOL", DataType::TYPE_BOOL, 1, true}; }
constexpr TensorSpec Int32(const char* n) { return {n, "INT32", DataType::TYPE_INT32, 1, true}; }
constexpr TensorSpec Fp32(const char* n) { return {n, "FP32", DataType::TYPE_FP32, 1, true}; }

}  // namespace

const std::vector<TensorSpec>& KServeInputs() {
  static const std::vector<TensorSpec> inputs = {
      Bytes("text_input", 1, false),
      Bool("stream"),
      // vLLM backend convention.
      Bytes("sampling_parameters", 1, true),
      Bool("exclude_input_in_output"),
      Bool("return_finish_reason"),
      Bool("return_num_input_tokens"),
      Bool("return_num_output_tokens"),
      // TensorRT-LLM backend convention.
      Int32("max_tokens"),
      Fp32("temperature"),
      Int32("top_k"),
      Int32("runtime_top_k"),
      Fp32("top_p"),
      Fp32("runtime_top_p"),
      {"random_seed", "UINT64", DataType::TYPE_UINT64, 1, true},
      Fp32("min_p"),
      Fp32("repetition_penalty"),
      Fp32("presence_penalty"),
      Fp32("frequency_penalty"),
      Bytes("stop_words", -1, true),
      Int32("end_id"),
      // TensorRT-LLM inputs accepted at their neutral value only.
      Bytes("bad_words", -1, true),
      Int32("pad_id"),
      Int32("beam_width"),
      Int32("num_return_sequences"),
      Int32("min_length"),
      Fp32("length_penalty"),
      Bool("return_log_probs"),
      Bool("return_context_logits"),
      Bool("return_generation_logits"),
  };
  return inputs;
}

const std::vector<TensorSpec>& KServeOutputs() {
  static const std::vector<TensorSpec> outputs = {
      Bytes("text_output", 1, false),
      Bytes("finish_reason", 1, true),
      {"num_input_tokens", "UINT32", DataType::TYPE_UINT32, 1, true},
      {"num_output_tokens", "UINT32", DataType::TYPE_UINT32, 1, true},
  };
  return outputs;
}

namespace {
const TensorSpec* Find(const std::vector<TensorSpec>& specs, absl::string_view name) {
  for (const TensorSpec& s : specs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}
}  // namespace

const TensorSpec* FindInput(absl::string_view name) { return Find(KServeInputs(), name); }
const TensorSpec* FindOutput(absl::string_view name) { return Find(KServeOutputs(), name); }

void FillModelMetadata(const std::string& model_name, inference::ModelMetadataResponse* out) {
  out->set_name(model_name);
  out->add_versions(std::string("1"));  // (const char*) overload trips GCC 12 -Wrestrict
  out->set_platform("strata");
  for (const TensorSpec& s : KServeInputs()) {
    auto* t = out->add_inputs();
    t->set_name(s.name);
    t->set_datatype(s.datatype);
    t->add_shape(s.dim);
  }
  for (const TensorSpec& s : KServeOutputs()) {
    auto* t = out->add_outputs();
    t->set_name(s.name);
    t->set_datatype(s.datatype);
    t->add_shape(s.dim);
  }
}

void FillModelConfig(const std::string& model_name, inference::ModelConfig* out) {
  out->set_name(model_name);
  out->set_backend("strata");
  out->set_max_batch_size(0);  // batching is the coordinator's, not the client's
  out->mutable_model_transaction_policy()->set_decoupled(true);
  for (const TensorSpec& s : KServeInputs()) {
    auto* t = out->add_input();
    t->set_name(s.name);
    t->set_data_type(s.data_type);
    t->add_dims(s.dim);
    t->set_optional(s.optional);
  }
  for (const TensorSpec& s : KServeOutputs()) {
    auto* t = out->add_output();
    t->set_name(s.name);
    t->set_data_type(s.data_type);
    t->add_dims(s.dim);
  }
}

}  // namespace strata::coordinator::frontend
