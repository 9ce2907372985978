#include "coordinator/frontend/kserve_response_builder.h"

#include <algorithm>

#include "coordinator/frontend/kserve_tensor_codec.h"

namespace strata::coordinator::frontend {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "abort";  // vLLM's name for a request aborted by the server
    case FinishReason::kNone:
      break;
  }
  return "";
}

inference::ModelInferResponse BuildEmptyResponse(const ResponseIdentity& identity) {
  inference::ModelInferResponse r;
  r.set_model_name(identity.model_name);
  r.set_model_version(identity.model_version);
  r.set_id(identity.id);
  return r;
}

inference::ModelInferResponse BuildInferResponse(const ResponseIdentity& identity,
                                                 const OutputSelection& outputs,
                                                 const ResponseContent& content) {
  inference::ModelInferResponse r = BuildEmptyResponse(identity);
  if (outputs.text_output) {
    AddRawOutput("text_output", "BYTES", {1}, EncodeRawBytes({content.text}), &r);
  }
  if (outputs.finish_reason) {
    AddRawOutput("finish_reason", "BYTES", {1},
                 EncodeRawBytes({FinishReasonName(content.finish)}), &r);
  }
  if (outputs.num_input_tokens) {
    AddRawOutput("num_input_tokens", "UINT32", {1},
                 EncodeRawUint32({static_cast<uint32_t>(std::max(0, content.num_input_tokens))}),
                 &r);
  }
  if (outputs.num_output_tokens) {
    AddRawOutput("num_output_tokens", "UINT32", {1},
                 EncodeRawUint32({static_cast<uint32_t>(std::max(0, content.num_output_tokens))}),
                 &r);
  }
  return r;
}

void SetFinalResponse(bool final, inference::ModelInferResponse* response) {
  (*response->mutable_parameters())["triton_final_response"].set_bool_param(final);
}

}  // namespace strata::coordinator::frontend
