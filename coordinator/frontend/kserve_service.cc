#include "coordinator/frontend/kserve_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/frontend/call_context.h"
#include "coordinator/grpc_status.h"
#include "coordinator/frontend/kserve_model_schema.h"
#include "coordinator/frontend/kserve_response_builder.h"
#include "coordinator/frontend/prompt_encoder.h"
#include "coordinator/frontend/request_pump.h"

namespace strata::coordinator {

using frontend::BuildEmptyResponse;
using frontend::BuildInferResponse;
using frontend::CallDeadline;
using frontend::EncodeText;
using frontend::FillModelConfig;
using frontend::FillModelMetadata;
using frontend::KServeInferRequest;
using frontend::KServeStreamSession;
using frontend::ParseInferRequest;
using frontend::PumpOptions;
using frontend::PumpOptionsFor;
using frontend::PumpRequestStream;
using frontend::ResponseContent;
using frontend::ResponseIdentity;
using frontend::SetFinalResponse;

// A submitted request with everything its responses need.
struct KServeService::Started {
  KServeInferRequest parsed;
  ResponseIdentity identity;
  int32_t prompt_tokens = 0;
  std::shared_ptr<RequestStream> stream;
  PumpOptions pump;
};

namespace {

grpc::Status Unimplemented(absl::string_view rpc) {
  return ToGrpcStatus(absl::UnimplementedError(
      absl::StrCat(rpc, " is not implemented by Strata: models are configured on the "
                        "coordinator, not through the KServe repository/shared-memory API")));
}

ResponseIdentity IdentityOf(const inference::ModelInferRequest& request) {
  return {request.model_name(), request.model_version(), request.id()};
}

inference::ModelStreamInferResponse StreamResponse(inference::ModelInferResponse response) {
  inference::ModelStreamInferResponse out;
  *out.mutable_infer_response() = std::move(response);
  return out;
}

}  // namespace

KServeService::KServeService(InferenceBackend* backend, KServeServiceOptions options)
    : backend_(backend), options_(std::move(options)) {}

absl::StatusOr<const ServedModel*> KServeService::ResolveModel(const std::string& name,
                                                               const std::string& version) const {
  if (!version.empty() && version != "1") {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version '", version,
                                            "'; Strata serves version 1 (or leave it empty)"));
  }
  return backend_->FindModel(name);
}

grpc::Status KServeService::ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) {
  response->set_live(true);
  return grpc::Status::OK;
}

grpc::Status KServeService::ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) {
  response->set_ready(backend_->IsReady());
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelReady(grpc::ServerContext*,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) {
  absl::StatusOr<const ServedModel*> model = ResolveModel(request->name(), request->version());
  if (!model.ok()) return ToGrpcStatus(model.status());
  response->set_ready(backend_->IsModelReady((*model)->name));
  return grpc::Status::OK;
}

grpc::Status KServeService::ServerMetadata(grpc::ServerContext*,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) {
  response->set_name("strata");
  response->set_version(options_.server_version);
  response->add_extensions("model_configuration");
  response->add_extensions("parameters");
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelMetadata(grpc::ServerContext*,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) {
  absl::StatusOr<const ServedModel*> model = ResolveModel(request->name(), request->version());
  if (!model.ok()) return ToGrpcStatus(model.status());
  FillModelMetadata((*model)->name, response);
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelConfig(grpc::ServerContext*,
                                        const inference::ModelConfigRequest* request,
                                        inference::ModelConfigResponse* response) {
  absl::StatusOr<const ServedModel*> model = ResolveModel(request->name(), request->version());
  if (!model.ok()) return ToGrpcStatus(model.status());
  FillModelConfig((*model)->name, response->mutable_config());
  return grpc::Status::OK;
}

absl::StatusOr<KServeService::Started> KServeService::Start(
    grpc::ServerContext* context, const inference::ModelInferRequest& request, bool allow_stream) {
  ASSIGN_OR_RETURN(const ServedModel* model,
                   ResolveModel(request.model_name(), request.model_version()));
  Started started;
  ASSIGN_OR_RETURN(started.parsed, ParseInferRequest(request));
  if (started.parsed.stream && !allow_stream) {
    return absl::InvalidArgumentError(
        "input 'stream' is true: streaming responses need ModelStreamInfer; ModelInfer returns "
        "the whole completion in one response");
  }
  GenerationRequest& generation = started.parsed.generation;
  ASSIGN_OR_RETURN(generation.prompt, EncodeText(*model, started.parsed.text_input,
                                                 /*add_special=*/true));
  absl::Time deadline = CallDeadline(*context);
  if (started.parsed.timeout.has_value()) {
    deadline = std::min(deadline, absl::Now() + *started.parsed.timeout);
  }
  generation.deadline = deadline;
  started.prompt_tokens = static_cast<int32_t>(generation.prompt.size());
  started.identity = IdentityOf(request);
  if (started.identity.model_name.empty()) started.identity.model_name = model->name;
  started.pump = PumpOptionsFor(context, options_.poll_interval, deadline);
  ASSIGN_OR_RETURN(started.stream, backend_->Submit(model->name, std::move(generation)));
  return started;
}

absl::StatusOr<ResponseContent> KServeService::WholeCompletion(const Started& started) {
  ResponseContent content;
  content.num_input_tokens = started.prompt_tokens;
  RETURN_IF_ERROR(PumpRequestStream(*started.stream, started.pump,
                                    [&](const GenerationChunk& chunk) {
                                      content.text += chunk.text;
                                      content.finish = chunk.finish;
                                      content.num_output_tokens = chunk.completion_tokens;
                                      if (chunk.prompt_tokens > 0) {
                                        content.num_input_tokens = chunk.prompt_tokens;
                                      }
                                      return absl::OkStatus();
                                    }));
  // As the vLLM backend: the prompt text comes first unless excluded.
  if (!started.parsed.exclude_input_in_output) {
    content.text = started.parsed.text_input + content.text;
  }
  return content;
}

absl::Status KServeService::Infer(grpc::ServerContext* context,
                                  const inference::ModelInferRequest& request,
                                  inference::ModelInferResponse* response) {
  ASSIGN_OR_RETURN(Started started, Start(context, request, /*allow_stream=*/false));
  ASSIGN_OR_RETURN(ResponseContent content, WholeCompletion(started));
  *response = BuildInferResponse(started.identity, started.parsed.outputs, content);
  return absl::OkStatus();
}

grpc::Status KServeService::ModelInfer(grpc::ServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) {
  return ToGrpcStatus(Infer(context, *request, response));
}

grpc::Status KServeService::ModelStreamInfer(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*
        stream) {
  KServeStreamSession session(stream, options_.max_requests_per_stream);
  session.Run([this, context](const inference::ModelInferRequest& request,
                              KServeStreamSession& s) { StreamRequest(context, request, s); });
  return grpc::Status::OK;
}

void KServeService::StreamRequest(grpc::ServerContext* context,
                                  const inference::ModelInferRequest& request,
                                  KServeStreamSession& session) {
  const absl::Status status = StreamRequestOrError(context, request, session);
  if (status.ok() || context->IsCancelled() || session.broken()) return;
  inference::ModelStreamInferResponse response =
      StreamResponse(BuildEmptyResponse(IdentityOf(request)));
  response.set_error_message(status.ToString());
  SetFinalResponse(true, response.mutable_infer_response());
  session.Write(response);
}

absl::Status KServeService::StreamRequestOrError(grpc::ServerContext* context,
                                                 const inference::ModelInferRequest& request,
                                                 KServeStreamSession& session) {
  ASSIGN_OR_RETURN(Started started, Start(context, request, /*allow_stream=*/true));
  const KServeInferRequest& parsed = started.parsed;
  const bool empty_final = parsed.enable_empty_final_response;
  auto write = [&](inference::ModelInferResponse response, bool final) -> absl::Status {
    SetFinalResponse(final, &response);
    if (!session.Write(StreamResponse(std::move(response)))) {
      return absl::CancelledError("the client closed the stream");
    }
    return absl::OkStatus();
  };
  auto write_empty_final = [&]() { return write(BuildEmptyResponse(started.identity), true); };

  if (parsed.stream) {
    // One response per chunk with its text delta; streaming never repeats the prompt.
    return PumpRequestStream(
        *started.stream, started.pump, [&](const GenerationChunk& chunk) -> absl::Status {
          const bool last = chunk.finish != FinishReason::kNone;
          ResponseContent content;
          content.text = chunk.text;
          content.finish = chunk.finish;
          content.num_input_tokens = chunk.prompt_tokens > 0 ? chunk.prompt_tokens
                                                             : started.prompt_tokens;
          content.num_output_tokens = static_cast<int32_t>(chunk.token_ids.size());
          if (last && empty_final && chunk.text.empty() && chunk.token_ids.empty()) {
            return write_empty_final();
          }
          RETURN_IF_ERROR(write(BuildInferResponse(started.identity, parsed.outputs, content),
                                last && !empty_final));
          if (last && empty_final) return write_empty_final();
          return absl::OkStatus();
        });
  }

  ASSIGN_OR_RETURN(ResponseContent content, WholeCompletion(started));
  RETURN_IF_ERROR(
      write(BuildInferResponse(started.identity, parsed.outputs, content), !empty_final));
  if (empty_final) return write_empty_final();
  return absl::OkStatus();
}

grpc::Status KServeService::ModelStatistics(grpc::ServerContext*,
                                            const inference::ModelStatisticsRequest*,
                                            inference::ModelStatisticsResponse*) {
  return ToGrpcStatus(absl::UnimplementedError(
      "ModelStatistics is not implemented by Strata; scrape the coordinator's Prometheus "
      "metrics instead"));
}
grpc::Status KServeService::RepositoryIndex(grpc::ServerContext*,
                                            const inference::RepositoryIndexRequest*,
                                            inference::RepositoryIndexResponse*) {
  return Unimplemented("RepositoryIndex");
}
grpc::Status KServeService::RepositoryModelLoad(grpc::ServerContext*,
                                                const inference::RepositoryModelLoadRequest*,
                                                inference::RepositoryModelLoadResponse*) {
  return Unimplemented("RepositoryModelLoad");
}
grpc::Status KServeService::RepositoryModelUnload(grpc::ServerContext*,
                                                  const inference::RepositoryModelUnloadRequest*,
                                                  inference::RepositoryModelUnloadResponse*) {
  return Unimplemented("RepositoryModelUnload");
}
grpc::Status KServeService::SystemSharedMemoryStatus(
    grpc::ServerContext*, const inference::SystemSharedMemoryStatusRequest*,
    inference::SystemSharedMemoryStatusResponse*) {
  return Unimplemented("SystemSharedMemoryStatus");
}
grpc::Status KServeService::SystemSharedMemoryRegister(
    grpc::ServerContext*, const inference::SystemSharedMemoryRegisterRequest*,
    inference::SystemSharedMemoryRegisterResponse*) {
  return Unimplemented("SystemSharedMemoryRegister");
}
grpc::Status KServeService::SystemSharedMemoryUnregister(
    grpc::ServerContext*, const inference::SystemSharedMemoryUnregisterRequest*,
    inference::SystemSharedMemoryUnregisterResponse*) {
  return Unimplemented("SystemSharedMemoryUnregister");
}
grpc::Status KServeService::CudaSharedMemoryStatus(grpc::ServerContext*,
                                                   const inference::CudaSharedMemoryStatusRequest*,
                                                   inference::CudaSharedMemoryStatusResponse*) {
  return Unimplemented("CudaSharedMemoryStatus");
}
grpc::Status KServeService::CudaSharedMemoryRegister(
    grpc::ServerContext*, const inference::CudaSharedMemoryRegisterRequest*,
    inference::CudaSharedMemoryRegisterResponse*) {
  return Unimplemented("CudaSharedMemoryRegister");
}
grpc::Status KServeService::CudaSharedMemoryUnregister(
    grpc::ServerContext*, const inference::CudaSharedMemoryUnregisterRequest*,
    inference::CudaSharedMemoryUnregisterResponse*) {
  return Unimplemented("CudaSharedMemoryUnregister");
}
grpc::Status KServeService::TraceSetting(grpc::ServerContext*,
                                         const inference::TraceSettingRequest*,
                                         inference::TraceSettingResponse*) {
  return Unimplemented("TraceSetting");
}
grpc::Status KServeService::LogSettings(grpc::ServerContext*, const inference::LogSettingsRequest*,
                                        inference::LogSettingsResponse*) {
  return Unimplemented("LogSettings");
}

}  // namespace strata::coordinator
