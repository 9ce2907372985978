// The sampling knobs of Triton's vLLM backend, applied to a GenerationRequest:
// the `sampling_parameters` JSON object (a BYTES tensor or a string request
// parameter), or the same keys as individual request parameters (the vLLM
// backend reads the request's parameters as that object when no tensor is sent).
//
// Keys and their effect (null leaves the default):
//   max_tokens (int >= 0; 0 = server limit)   temperature, top_p, min_p (number)
//   top_k (int; -1 or 0 = off)                 seed (int >= 0)
//   repetition_penalty, presence_penalty, frequency_penalty (number)
//   stop (string or list of strings)           stop_token_ids (list of ints)
//   ignore_eos, skip_special_tokens (bool)
//   parse_special_tokens (bool, Strata's; default false): the text prompt's
//     special-token text ("<|im_start|>") becomes control tokens (a raw,
//     pre-formatted prompt); written to *parse_special_tokens
// Accepted only at the value that changes nothing (vLLM features Strata does
// not implement): n = 1, best_of = 1, use_beam_search = false, min_tokens = 0,
// logprobs = 0, prompt_logprobs = 0, include_stop_str_in_output = false,
// detokenize = true, spaces_between_special_tokens = true, length_penalty = 1.
// As the vLLM backend does (it casts with Python's float()/int()), numbers may
// also be written as strings ("0.7"); booleans may be true/false, the strings
// "true"/"false" or the integers 0/1.
//
// Errors are INVALID_ARGUMENT naming sampling_parameters and the key (or the
// request parameter, quoted with QuoteForError): not a JSON object, an unknown key in the JSON, a value
// of the wrong type or out of range.
//
// Thread ownership: stateless.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "coordinator/generation.h"
#include "inference/grpc_service.pb.h"

namespace strata::coordinator::frontend {

// `parse_special_tokens` receives that key's value (unchanged when absent).
absl::Status ApplyVllmSamplingParameters(absl::string_view json, GenerationRequest* request,
                                         bool* parse_special_tokens);

// True for the keys listed above.
bool IsVllmSamplingKey(absl::string_view key);
// One key given as a request parameter (bool/int64/uint64/double/string_param).
absl::Status ApplyVllmSamplingParameter(absl::string_view key,
                                        const inference::InferParameter& value,
                                        GenerationRequest* request, bool* parse_special_tokens);

}  // namespace strata::coordinator::frontend
