// strata.v1.Strata, the native client API (proto/strata/v1/strata.proto),
// over the coordinator's InferenceBackend.
//
//   Generate    prompt as text (tokenized with BOS as the tokenizer says,
//               special-token text parsed), token_ids (as is) or chat (the
//               model's chat template; a model without one: UNIMPLEMENTED with
//               its template error). Unset sampling fields keep the server
//               defaults; max_tokens 0 = the server limit. One response per
//               chunk (text delta, token ids, logprobs when asked); the last
//               carries finish_reason and usage. A client cancelling the call
//               cancels the generation; the call's deadline bounds it.
//   Tokenize    text or chat -> ids (add_special_tokens: BOS when the model uses one),
//               bounded like a prompt (max_prompt_tokens)
//   Detokenize  ids -> text (invalid UTF-8 replaced with U+FFFD); an id outside
//               the vocabulary is INVALID_ARGUMENT naming it
// Text prompts parse special-token text only with parse_special_tokens; chat
// content never does (prompt_encoder.h). Fields are size-checked before any
// work (request_limits.h); tokenizing stops at max_prompt_tokens and when the
// client cancels or its deadline passes. With api_keys set, every RPC first
// checks the call's API key (api_key_auth.h).
//   ListModels  the backend's ListModels()
// Unknown model: NOT_FOUND naming it (from the backend).
//
// Thread ownership: gRPC's sync server calls the methods concurrently; the
// service holds no mutable state. The backend must outlive the service.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/frontend/api_key_auth.h"
#include "coordinator/frontend/request_limits.h"
#include "coordinator/inference_backend.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::coordinator {

struct StrataServiceOptions {
  // How often a waiting Generate checks for client cancellation and its deadline.
  absl::Duration poll_interval = absl::Milliseconds(25);
  frontend::RequestLimits limits;
  // Null: no authentication. Not owned; must outlive the service.
  frontend::ApiKeys* api_keys = nullptr;
};

class StrataService final : public strata::v1::Strata::Service {
 public:
  explicit StrataService(InferenceBackend* backend, StrataServiceOptions options = {});

  grpc::Status Generate(grpc::ServerContext* context, const strata::v1::GenerateRequest* request,
                        grpc::ServerWriter<strata::v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const strata::v1::TokenizeRequest* request,
                        strata::v1::TokenizeResponse* response) override;
  grpc::Status Detokenize(grpc::ServerContext* context,
                          const strata::v1::DetokenizeRequest* request,
                          strata::v1::DetokenizeResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context,
                          const strata::v1::ListModelsRequest* request,
                          strata::v1::ListModelsResponse* response) override;

 private:
  // A generation request checked, tokenized and ready to submit.
  struct Prepared {
    std::string model;
    GenerationRequest generation;
  };
  absl::StatusOr<Prepared> PrepareGenerate(grpc::ServerContext* context, const strata::v1::GenerateRequest& request);
  absl::Status DoGenerate(grpc::ServerContext* context, const strata::v1::GenerateRequest& request,
                          grpc::ServerWriterInterface<strata::v1::GenerateResponse>* writer);
  absl::StatusOr<strata::v1::TokenizeResponse> DoTokenize(
      grpc::ServerContext* context, const strata::v1::TokenizeRequest& request) const;
  absl::Status Authenticate(const grpc::ServerContext& context) const;
  absl::StatusOr<strata::v1::DetokenizeResponse> DoDetokenize(
      const strata::v1::DetokenizeRequest& request) const;

  InferenceBackend* const backend_;
  const StrataServiceOptions options_;
};

}  // namespace strata::coordinator
