#include "coordinator/frontend/kserve_request_parser.h"

#include <limits>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/sampling_params.h"
#include "common/status_macros.h"
#include "coordinator/frontend/kserve_tensor_codec.h"
#include "coordinator/frontend/quote.h"
#include "coordinator/frontend/vllm_sampling_parameters.h"

namespace strata::coordinator::frontend {
namespace {

using InferParameter = inference::InferParameter;

absl::Status CheckScalarShape(const InputTensor& input) {
  const auto& t = *input.tensor;
  if (t.shape_size() == 0 || t.shape_size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("input ", QuoteForError(t.name()), ": shape must be [1] or [1,1], got rank ",
                     t.shape_size()));
  }
  ASSIGN_OR_RETURN(int64_t count, ElementCount(t));
  if (count != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input ", QuoteForError(t.name()), ": needs exactly one element ([1] or [1,1]), the shape has ", count));
  }
  return absl::OkStatus();
}

template <typename T, typename Decode>
absl::StatusOr<T> Scalar(const InputTensor& input, Decode decode) {
  RETURN_IF_ERROR(CheckScalarShape(input));
  ASSIGN_OR_RETURN(auto values, decode(input));
  return static_cast<T>(values[0]);
}

// [N] or [1,N] strings.
absl::StatusOr<std::vector<std::string>> StringList(const InputTensor& input) {
  if (input.tensor->shape_size() == 0 || input.tensor->shape_size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("input ", QuoteForError(input.tensor->name()),
                                                   ": shape must be [N] or [1,N], got rank ",
                                                   input.tensor->shape_size()));
  }
  return DecodeBytes(input);
}

absl::Status Unsupported(const std::string& name, absl::string_view got,
                         absl::string_view allowed) {
  return absl::InvalidArgumentError(absl::StrCat("input ", QuoteForError(name), ": ", got,
                                                 " is not supported by Strata; only ", allowed));
}

absl::StatusOr<bool> BoolParameter(const std::string& name, const InferParameter& p) {
  if (p.parameter_choice_case() != InferParameter::kBoolParam) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter ", QuoteForError(name), " must be a bool_param"));
  }
  return p.bool_param();
}

// Request-level parameters; sampling_parameters JSON is returned to apply
// after the vLLM keys given as parameters and before the tensors.
absl::Status ApplyParameters(const inference::ModelInferRequest& request, KServeInferRequest* out,
                             std::optional<std::string>* sampling_json) {
  // Sorted, so that errors and overrides do not depend on map order.
  std::map<std::string, const InferParameter*> sorted;
  for (const auto& [name, p] : request.parameters()) sorted[name] = &p;
  for (const auto& [name, param] : sorted) {
    const InferParameter& p = *param;
    if (name == "triton_enable_empty_final_response") {
      ASSIGN_OR_RETURN(out->enable_empty_final_response, BoolParameter(name, p));
    } else if (name == "sampling_parameters") {
      if (p.parameter_choice_case() != InferParameter::kStringParam) {
        return absl::InvalidArgumentError(
            "parameter 'sampling_parameters' must be a string_param holding a JSON object");
      }
      *sampling_json = p.string_param();
    } else if (name == "timeout") {
      int64_t micros = 0;
      if (p.parameter_choice_case() == InferParameter::kInt64Param) {
        micros = p.int64_param();
      } else if (p.parameter_choice_case() == InferParameter::kUint64Param &&
                 p.uint64_param() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        micros = static_cast<int64_t>(p.uint64_param());
      } else {
        return absl::InvalidArgumentError(
            "parameter 'timeout' must be an int64_param (microseconds)");
      }
      if (micros < 0) {
        return absl::InvalidArgumentError("parameter 'timeout' must be >= 0 microseconds");
      }
      if (micros > 0) out->timeout = absl::Microseconds(micros);  // Triton: 0 = none
    } else if (IsVllmSamplingKey(name)) {
      // The vLLM backend takes the request's parameters as its sampling JSON.
      RETURN_IF_ERROR(ApplyVllmSamplingParameter(name, p, &out->generation, &out->parse_special_tokens));
    }
    // Anything else (sequence_id, sequence_start, sequence_end, priority,
    // binary_data_output, headers, ...) is ignored, as Triton's LLM backends do.
  }
  return absl::OkStatus();
}

absl::Status ApplyInput(const InputTensor& input, KServeInferRequest* out,
                        bool* exclude_input_set) {
  const std::string& name = input.tensor->name();
  GenerationRequest& g = out->generation;
  SamplingParams& s = g.sampling;
  if (name == "text_input") {
    RETURN_IF_ERROR(CheckScalarShape(input));
    ASSIGN_OR_RETURN(std::vector<std::string> text, DecodeBytes(input));
    out->text_input = std::move(text[0]);
  } else if (name == "stream") {
    ASSIGN_OR_RETURN(out->stream, Scalar<bool>(input, DecodeBool));
  } else if (name == "exclude_input_in_output") {
    ASSIGN_OR_RETURN(out->exclude_input_in_output, Scalar<bool>(input, DecodeBool));
    *exclude_input_set = true;
  } else if (name == "return_finish_reason") {
    ASSIGN_OR_RETURN(out->outputs.finish_reason, Scalar<bool>(input, DecodeBool));
  } else if (name == "return_num_input_tokens") {
    ASSIGN_OR_RETURN(out->outputs.num_input_tokens, Scalar<bool>(input, DecodeBool));
  } else if (name == "return_num_output_tokens") {
    ASSIGN_OR_RETURN(out->outputs.num_output_tokens, Scalar<bool>(input, DecodeBool));
  } else if (name == "sampling_parameters") {
    // Applied by the caller before the other tensors; checked here.
    RETURN_IF_ERROR(CheckScalarShape(input));
    RETURN_IF_ERROR(DecodeBytes(input).status());
  } else if (name == "max_tokens") {
    ASSIGN_OR_RETURN(int32_t v, Scalar<int32_t>(input, DecodeInt32));
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("input 'max_tokens': must be >= 0 (0 = server limit), got ", v));
    }
    g.max_tokens = v;
  } else if (name == "temperature") {
    ASSIGN_OR_RETURN(s.temperature, Scalar<float>(input, DecodeFp32));
  } else if (name == "top_k" || name == "runtime_top_k") {
    ASSIGN_OR_RETURN(int32_t v, Scalar<int32_t>(input, DecodeInt32));
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ", QuoteForError(name), ": must be >= 0 (0 = off), got ", v));
    }
    s.top_k = v;
  } else if (name == "top_p" || name == "runtime_top_p") {
    ASSIGN_OR_RETURN(s.top_p, Scalar<float>(input, DecodeFp32));
  } else if (name == "random_seed") {
    ASSIGN_OR_RETURN(uint64_t v, Scalar<uint64_t>(input, DecodeUint64));
    s.seed = v;
  } else if (name == "min_p") {
    ASSIGN_OR_RETURN(s.min_p, Scalar<float>(input, DecodeFp32));
  } else if (name == "repetition_penalty") {
    ASSIGN_OR_RETURN(s.repetition_penalty, Scalar<float>(input, DecodeFp32));
  } else if (name == "presence_penalty") {
    ASSIGN_OR_RETURN(s.presence_penalty, Scalar<float>(input, DecodeFp32));
  } else if (name == "frequency_penalty") {
    ASSIGN_OR_RETURN(s.frequency_penalty, Scalar<float>(input, DecodeFp32));
  } else if (name == "stop_words") {
    ASSIGN_OR_RETURN(std::vector<std::string> words, StringList(input));
    // Empty strings mean "none": TensorRT-LLM's clients send [[""]] by default.
    for (std::string& w : words) {
      if (!w.empty()) g.stop.push_back(std::move(w));
    }
  } else if (name == "bad_words") {
    ASSIGN_OR_RETURN(std::vector<std::string> words, StringList(input));
    for (const std::string& w : words) {
      if (!w.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input 'bad_words': banning words is not supported by Strata (got ", QuoteForError(w),
            "); send it empty or leave it out"));
      }
    }
  } else if (name == "end_id") {
    ASSIGN_OR_RETURN(int32_t v, Scalar<int32_t>(input, DecodeInt32));
    if (v < 0) {
      return absl::InvalidArgumentError(absl::StrCat("input 'end_id': must be >= 0, got ", v));
    }
    g.stop_token_ids.push_back(v);
  } else if (name == "beam_width" || name == "num_return_sequences") {
    ASSIGN_OR_RETURN(int32_t v, Scalar<int32_t>(input, DecodeInt32));
    if (v != 1) return Unsupported(name, absl::StrCat(v), "1");
  } else if (name == "min_length") {  // TensorRT-LLM: minimum output length
    ASSIGN_OR_RETURN(int32_t v, Scalar<int32_t>(input, DecodeInt32));
    if (v < 0) return absl::InvalidArgumentError(absl::StrCat("input 'min_length': must be >= 0, got ", v));
    g.min_tokens = v;
  } else if (name == "length_penalty") {
    ASSIGN_OR_RETURN(float v, Scalar<float>(input, DecodeFp32));
    if (v != 1.0f) return Unsupported(name, absl::StrCat(v), "1 (it only affects beam search)");
  } else if (name == "pad_id") {
    // Padding is TensorRT-LLM's batching detail; Strata has none to set.
    RETURN_IF_ERROR(Scalar<int32_t>(input, DecodeInt32).status());
  } else if (name == "return_log_probs" || name == "return_context_logits" ||
             name == "return_generation_logits") {
    ASSIGN_OR_RETURN(bool v, Scalar<bool>(input, DecodeBool));
    if (v) return Unsupported(name, "true", "false (use strata.v1 Generate for logprobs)");
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown input ", QuoteForError(name), " (ModelMetadata lists the inputs this model takes)"));
  }
  return absl::OkStatus();
}

absl::Status SelectOutputs(const inference::ModelInferRequest& request, OutputSelection* sel) {
  if (request.outputs_size() == 0) return absl::OkStatus();
  OutputSelection picked;
  picked.text_output = false;
  for (const auto& o : request.outputs()) {
    if (o.name() == "text_output") {
      picked.text_output = true;
    } else if (o.name() == "finish_reason") {
      picked.finish_reason = true;
    } else if (o.name() == "num_input_tokens") {
      picked.num_input_tokens = true;
    } else if (o.name() == "num_output_tokens") {
      picked.num_output_tokens = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown output ", QuoteForError(o.name()), " requested (ModelMetadata lists the outputs)"));
    }
  }
  *sel = picked;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KServeInferRequest> ParseInferRequest(const inference::ModelInferRequest& request) {
  KServeInferRequest out;
  out.generation.request_id = request.id();
  std::optional<std::string> sampling_json;
  RETURN_IF_ERROR(ApplyParameters(request, &out, &sampling_json));
  ASSIGN_OR_RETURN(std::vector<InputTensor> inputs, CollectInputTensors(request));

  std::set<std::string> seen;
  const InputTensor* text = nullptr;
  for (const InputTensor& input : inputs) {
    if (!seen.insert(input.tensor->name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ", QuoteForError(input.tensor->name()), " appears more than once"));
    }
    if (input.tensor->name() == "text_input") text = &input;
    if (input.tensor->name() == "sampling_parameters") {
      RETURN_IF_ERROR(CheckScalarShape(input));
      ASSIGN_OR_RETURN(std::vector<std::string> json, DecodeBytes(input));
      sampling_json = std::move(json[0]);  // the tensor wins over the parameter
    }
  }
  if (text == nullptr) {
    return absl::InvalidArgumentError("input 'text_input' is required (BYTES, shape [1])");
  }
  // The JSON first, then the separate tensors override what it set.
  if (sampling_json.has_value()) {
    RETURN_IF_ERROR(ApplyVllmSamplingParameters(*sampling_json, &out.generation, &out.parse_special_tokens));
  }
  bool exclude_input_set = false;
  for (const InputTensor& input : inputs) {
    RETURN_IF_ERROR(ApplyInput(input, &out, &exclude_input_set));
  }
  if (out.stream && exclude_input_set && !out.exclude_input_in_output) {
    // Triton's vLLM backend refuses it too: streamed responses carry only new text.
    return absl::InvalidArgumentError(
        "input 'exclude_input_in_output': false is not allowed with stream = true (streamed "
        "responses carry only the new text); leave it out or set it to true");
  }
  RETURN_IF_ERROR(SelectOutputs(request, &out.outputs));
  RETURN_IF_ERROR(ValidateSamplingParams(out.generation.sampling));
  return out;
}

}  // namespace strata::coordinator::frontend
