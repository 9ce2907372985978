// What one KServe response carries, turned into a ModelInferResponse: the
// echoed model name/version/id, the selected outputs in raw_output_contents,
// and in decoupled mode (ModelStreamInfer) Triton's triton_final_response
// parameter.
//
// Outputs (each [1]):
//   text_output       BYTES   the delta (streaming) or the whole text
//   finish_reason     BYTES   "stop", "length", "abort"; "" before the last
//   num_input_tokens  UINT32  prompt tokens
//   num_output_tokens UINT32  tokens in this response (delta when streaming)
//
// Thread ownership: stateless.
#pragma once

#include <cstdint>
#include <string>

#include "coordinator/frontend/kserve_request_parser.h"
#include "coordinator/generation.h"
#include "inference/grpc_service.pb.h"

namespace strata::coordinator::frontend {

// Identity echoed on every response of a request.
struct ResponseIdentity {
  std::string model_name;
  std::string model_version;
  std::string id;
};

struct ResponseContent {
  std::string text;
  FinishReason finish = FinishReason::kNone;
  int32_t num_input_tokens = 0;
  int32_t num_output_tokens = 0;
};

// "stop", "length", "abort", or "" for kNone.
const char* FinishReasonName(FinishReason reason);

// A response with the selected outputs.
inference::ModelInferResponse BuildInferResponse(const ResponseIdentity& identity,
                                                 const OutputSelection& outputs,
                                                 const ResponseContent& content);

// A response without outputs (Triton's empty final response, errors).
inference::ModelInferResponse BuildEmptyResponse(const ResponseIdentity& identity);

// Sets triton_final_response (bool_param) as Triton does on every response of
// a decoupled model.
void SetFinalResponse(bool final, inference::ModelInferResponse* response);

}  // namespace strata::coordinator::frontend
