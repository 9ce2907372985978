// ModelInferRequest (KServe v2, as Triton's vLLM and TensorRT-LLM backends'
// clients send it) -> the frontend's view of one generation. Pure: no model,
// no tokenizer; the service tokenizes text_input afterwards.
//
// Inputs (see kserve_model_schema.cc for the declared table):
//   text_input BYTES [1]|[1,1] (required)   the prompt text
//   stream BOOL                              one response per chunk (ModelStreamInfer)
//   exclude_input_in_output BOOL             non-streaming: leave the prompt out
//   return_finish_reason / return_num_input_tokens / return_num_output_tokens BOOL
//   sampling_parameters BYTES                vLLM JSON (vllm_sampling_parameters.h)
//   max_tokens INT32, temperature FP32, top_k|runtime_top_k INT32,
//   top_p|runtime_top_p FP32, random_seed UINT64, min_p FP32,
//   repetition_penalty / presence_penalty / frequency_penalty FP32,
//   stop_words BYTES [N] (empty strings ignored), end_id INT32 (a stop token id)
//   accepted at their neutral value only: bad_words BYTES [N] (all empty),
//   beam_width / num_return_sequences INT32 (1), min_length INT32 (0 or 1),
//   length_penalty FP32 (1), return_log_probs / return_context_logits /
//   return_generation_logits BOOL (false); pad_id INT32 (ignored)
// Scalars need exactly one element and at most two dimensions ([1] or [1,1]).
// exclude_input_in_output = false with stream = true is an error, as in the
// vLLM backend (streamed responses carry only new text); absent, it means
// "prepend the prompt" for non-streamed responses.
//
// Request parameters: triton_enable_empty_final_response (bool), timeout
// (int64 microseconds, Triton's: tightens the deadline), sampling_parameters
// (string: the JSON), parse_special_tokens (bool, see below), and the vLLM
// sampling keys themselves (max_tokens,
// temperature, ... as bool/int64/uint64/double/string params: the vLLM
// backend reads the request parameters as its JSON). Others (sequence_id,
// sequence_start/end, priority, headers, ...) are accepted and ignored, as
// Triton's LLM backends ignore them.
// Precedence, later wins: sampling keys as parameters, then the JSON (tensor
// over parameter), then the separate tensors.
//
// Every error is INVALID_ARGUMENT naming the tensor, parameter or JSON key.
//
// Thread ownership: stateless.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/generation.h"
#include "inference/grpc_service.pb.h"

namespace strata::coordinator::frontend {

// Which outputs a response carries.
struct OutputSelection {
  bool text_output = true;
  bool finish_reason = false;
  bool num_input_tokens = false;
  bool num_output_tokens = false;
};

struct KServeInferRequest {
  std::string text_input;
  // Everything but the prompt (filled by the service from text_input) and the
  // deadline (from the call's context and `timeout`).
  GenerationRequest generation;
  bool stream = false;
  bool exclude_input_in_output = false;
  bool enable_empty_final_response = false;
  // Request parameter / sampling_parameters key "parse_special_tokens": the
  // text prompt's special-token text becomes control tokens. Default false.
  bool parse_special_tokens = false;
  std::optional<absl::Duration> timeout;  // Triton's "timeout" parameter
  // The outputs named in request.outputs, or (none named) text_output plus
  // those whose return_* input is true. Unknown output names are an error.
  OutputSelection outputs;
};

absl::StatusOr<KServeInferRequest> ParseInferRequest(const inference::ModelInferRequest& request);

}  // namespace strata::coordinator::frontend
