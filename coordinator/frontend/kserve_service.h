// inference.GRPCInferenceService (KServe v2 / Triton) over the coordinator's
// InferenceBackend, for the clients of Triton's vLLM and TensorRT-LLM
// backends (tritonclient, perf_analyzer, genai-perf).
//
//   ServerLive    always true          ServerReady  backend->IsReady()
//   ModelReady    IsModelReady(name)   (unknown model or version: NOT_FOUND)
//   ServerMetadata / ModelMetadata / ModelConfig: kserve_model_schema.h
//   ModelInfer        one response with the whole completion
//   ModelStreamInfer  decoupled; per request: stream=true -> one response per
//                     chunk (text delta), else one with the whole text; the
//                     last carries triton_final_response = true, or, with the
//                     request parameter triton_enable_empty_final_response,
//                     an extra empty response does. Errors of one request go
//                     into error_message; the stream stays open.
//   The rest          UNIMPLEMENTED with a message.
// Request parsing: kserve_request_parser.h; outputs: kserve_response_builder.h.
// Every request field is size-checked before any work (request_limits.h);
// the text prompt parses special-token text only with the request's
// parse_special_tokens (prompt_encoder.h); tokenizing stops at
// max_prompt_tokens and when the client cancels or its deadline passes.
// With api_keys set, every RPC first checks the call's API key
// (api_key_auth.h). model_version must be "" or "1". A client that cancels (or closes the
// stream) cancels its in-flight generations; the call's deadline becomes the
// generations' deadline.
//
// Thread ownership: gRPC's sync server calls the RPC methods concurrently from
// its threads; the service holds no mutable state (the backend is
// thread-safe). ModelStreamInfer starts one thread per request it reads and
// joins them before it returns. The backend must outlive the service.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/frontend/api_key_auth.h"
#include "coordinator/frontend/kserve_request_parser.h"
#include "coordinator/frontend/request_limits.h"
#include "coordinator/frontend/kserve_response_builder.h"
#include "coordinator/frontend/kserve_stream_session.h"
#include "coordinator/inference_backend.h"
#include "inference/grpc_service.grpc.pb.h"

namespace strata::coordinator {

struct KServeServiceOptions {
  std::string server_version = "0.1.0";  // ServerMetadata.version
  // How often a waiting call checks for client cancellation and its deadline.
  absl::Duration poll_interval = absl::Milliseconds(25);
  // Requests running at once on one ModelStreamInfer stream.
  int max_requests_per_stream = 256;
  frontend::RequestLimits limits;
  // Null: no authentication. Not owned; must outlive the service.
  frontend::ApiKeys* api_keys = nullptr;
};

class KServeService final : public inference::GRPCInferenceService::Service {
 public:
  explicit KServeService(InferenceBackend* backend, KServeServiceOptions options = {});

  grpc::Status ServerLive(grpc::ServerContext* context, const inference::ServerLiveRequest* request,
                          inference::ServerLiveResponse* response) override;
  grpc::Status ServerReady(grpc::ServerContext* context,
                           const inference::ServerReadyRequest* request,
                           inference::ServerReadyResponse* response) override;
  grpc::Status ModelReady(grpc::ServerContext* context, const inference::ModelReadyRequest* request,
                          inference::ModelReadyResponse* response) override;
  grpc::Status ServerMetadata(grpc::ServerContext* context,
                              const inference::ServerMetadataRequest* request,
                              inference::ServerMetadataResponse* response) override;
  grpc::Status ModelMetadata(grpc::ServerContext* context,
                             const inference::ModelMetadataRequest* request,
                             inference::ModelMetadataResponse* response) override;
  grpc::Status ModelConfig(grpc::ServerContext* context,
                           const inference::ModelConfigRequest* request,
                           inference::ModelConfigResponse* response) override;
  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* response) override;
  grpc::Status ModelStreamInfer(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*
          stream) override;

  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest*,
                               inference::ModelStatisticsResponse*) override;
  grpc::Status RepositoryIndex(grpc::ServerContext*, const inference::RepositoryIndexRequest*,
                               inference::RepositoryIndexResponse*) override;
  grpc::Status RepositoryModelLoad(grpc::ServerContext*,
                                   const inference::RepositoryModelLoadRequest*,
                                   inference::RepositoryModelLoadResponse*) override;
  grpc::Status RepositoryModelUnload(grpc::ServerContext*,
                                     const inference::RepositoryModelUnloadRequest*,
                                     inference::RepositoryModelUnloadResponse*) override;
  grpc::Status SystemSharedMemoryStatus(grpc::ServerContext*,
                                        const inference::SystemSharedMemoryStatusRequest*,
                                        inference::SystemSharedMemoryStatusResponse*) override;
  grpc::Status SystemSharedMemoryRegister(grpc::ServerContext*,
                                          const inference::SystemSharedMemoryRegisterRequest*,
                                          inference::SystemSharedMemoryRegisterResponse*) override;
  grpc::Status SystemSharedMemoryUnregister(
      grpc::ServerContext*, const inference::SystemSharedMemoryUnregisterRequest*,
      inference::SystemSharedMemoryUnregisterResponse*) override;
  grpc::Status CudaSharedMemoryStatus(grpc::ServerContext*,
                                      const inference::CudaSharedMemoryStatusRequest*,
                                      inference::CudaSharedMemoryStatusResponse*) override;
  grpc::Status CudaSharedMemoryRegister(grpc::ServerContext*,
                                        const inference::CudaSharedMemoryRegisterRequest*,
                                        inference::CudaSharedMemoryRegisterResponse*) override;
  grpc::Status CudaSharedMemoryUnregister(grpc::ServerContext*,
                                          const inference::CudaSharedMemoryUnregisterRequest*,
                                          inference::CudaSharedMemoryUnregisterResponse*) override;
  grpc::Status TraceSetting(grpc::ServerContext*, const inference::TraceSettingRequest*,
                            inference::TraceSettingResponse*) override;
  grpc::Status LogSettings(grpc::ServerContext*, const inference::LogSettingsRequest*,
                           inference::LogSettingsResponse*) override;

 private:
  struct Started;

  absl::Status Authenticate(const grpc::ServerContext& context) const;
  // The unimplemented RPCs' answer (after authentication).
  grpc::Status Unimplemented(const grpc::ServerContext& context, absl::string_view rpc) const;
  // NOT_FOUND for an unknown model (from the backend) or a version other than "" / "1".
  absl::StatusOr<const ServedModel*> ResolveModel(const std::string& name,
                                                  const std::string& version) const;
  // Prepare, then submit; a refusal before Submit is counted as a rejection.
  absl::StatusOr<Started> Start(grpc::ServerContext* context,
                                const inference::ModelInferRequest& request, bool allow_stream);
  // Authenticate, check, parse, tokenize: everything before Submit.
  absl::StatusOr<Started> Prepare(grpc::ServerContext* context,
                                  const inference::ModelInferRequest& request, bool allow_stream);
  // Drains the request into one response's content (non-streamed).
  static absl::StatusOr<frontend::ResponseContent> WholeCompletion(const Started& started);
  absl::Status Infer(grpc::ServerContext* context, const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response);
  // One request of a ModelStreamInfer call, on its own thread.
  void StreamRequest(grpc::ServerContext* context, const inference::ModelInferRequest& request,
                     frontend::KServeStreamSession& session);
  absl::Status StreamRequestOrError(grpc::ServerContext* context,
                                    const inference::ModelInferRequest& request,
                                    frontend::KServeStreamSession& session);

  InferenceBackend* const backend_;
  const KServeServiceOptions options_;
};

}  // namespace strata::coordinator
