#include "coordinator/frontend/kserve_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/frontend/call_context.h"
#include "coordinator/grpc_status.h"
#include "coordinator/frontend/kserve_model_schema.h"
#include "coordinator/frontend/model_lookup.h"
#include "coordinator/frontend/quote.h"
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
using frontend::PromptEncoding;
using frontend::PumpOptions;
using frontend::PumpOptionsFor;
using frontend::PumpRequestStream;
using frontend::QuoteForError;
using frontend::ResponseContent;
using frontend::ResponseIdentity;
using frontend::SetFinalResponse;

// A submitted request with everything its responses need.
struct KServeService::Started {
  KServeInferRequest parsed;
  std::string model;  // the served model's name
  ResponseIdentity identity;
  int32_t prompt_tokens = 0;
  std::shared_ptr<RequestStream> stream;
  PumpOptions pump;
};

namespace {

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

absl::Status KServeService::Authenticate(const grpc::ServerContext& context) const {
  if (options_.api_keys == nullptr) return absl::OkStatus();
  return options_.api_keys->Check(context);
}

grpc::Status KServeService::Unimplemented(const grpc::ServerContext& context, absl::string_view rpc) const {
  if (absl::Status auth = Authenticate(context); !auth.ok()) return ToGrpcStatus(auth);
  return ToGrpcStatus(absl::UnimplementedError(
      absl::StrCat(rpc, " is not implemented by Strata: models are configured on the "
                        "coordinator, not through the KServe repository/shared-memory API")));
}

absl::StatusOr<const ServedModel*> KServeService::ResolveModel(const std::string& name,
                                                               const std::string& version) const {
  RETURN_IF_ERROR(frontend::CheckModelName("model_name", name));
  if (!version.empty() && version != "1") {
    return absl::NotFoundError(absl::StrCat("model ", QuoteForError(name), " has no version ",
                                            QuoteForError(version),
                                            "; Strata serves version 1 (or leave it empty)"));
  }
  return frontend::LookUpModel(*backend_, "model_name", name);
}

grpc::Status KServeService::ServerLive(grpc::ServerContext* context, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  response->set_live(true);
  return grpc::Status::OK;
}

grpc::Status KServeService::ServerReady(grpc::ServerContext* context, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  response->set_ready(backend_->IsReady());
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelReady(grpc::ServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  absl::StatusOr<const ServedModel*> model = ResolveModel(request->name(), request->version());
  if (!model.ok()) return ToGrpcStatus(model.status());
  response->set_ready(backend_->IsModelReady((*model)->name));
  return grpc::Status::OK;
}

grpc::Status KServeService::ServerMetadata(grpc::ServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  response->set_name("strata");
  response->set_version(options_.server_version);
  response->add_extensions("model_configuration");
  response->add_extensions("parameters");
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelMetadata(grpc::ServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  absl::StatusOr<const ServedModel*> model = ResolveModel(request->name(), request->version());
  if (!model.ok()) return ToGrpcStatus(model.status());
  FillModelMetadata((*model)->name, response);
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelConfig(grpc::ServerContext* context,
                                        const inference::ModelConfigRequest* request,
                                        inference::ModelConfigResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  absl::StatusOr<const ServedModel*> model = ResolveModel(request->name(), request->version());
  if (!model.ok()) return ToGrpcStatus(model.status());
  FillModelConfig((*model)->name, response->mutable_config());
  return grpc::Status::OK;
}

absl::StatusOr<KServeService::Started> KServeService::Start(
    grpc::ServerContext* context, const inference::ModelInferRequest& request, bool allow_stream) {
  absl::StatusOr<Started> started = Prepare(context, request, allow_stream);
  if (!started.ok()) {
    backend_->RecordRejection(started.status().code());
    return started.status();
  }
  ASSIGN_OR_RETURN(started->stream, backend_->Submit(started->model, std::move(started->parsed.generation)));
  return started;
}

absl::StatusOr<KServeService::Started> KServeService::Prepare(
    grpc::ServerContext* context, const inference::ModelInferRequest& request, bool allow_stream) {
  RETURN_IF_ERROR(Authenticate(*context));
  RETURN_IF_ERROR(frontend::CheckInferRequest(request, options_.limits));
  ASSIGN_OR_RETURN(const ServedModel* model,
                   ResolveModel(request.model_name(), request.model_version()));
  RETURN_IF_ERROR(frontend::CheckKServePrompt(request, options_.limits, *model));
  Started started;
  ASSIGN_OR_RETURN(started.parsed, ParseInferRequest(request));
  if (started.parsed.stream && !allow_stream) {
    return absl::InvalidArgumentError(
        "input 'stream' is true: streaming responses need ModelStreamInfer; ModelInfer returns "
        "the whole completion in one response");
  }
  GenerationRequest& generation = started.parsed.generation;
  // Stop strings come from stop_words and sampling_parameters alike.
  RETURN_IF_ERROR(frontend::CheckCount("stop strings (stop_words, sampling_parameters stop)",
                                       static_cast<int64_t>(generation.stop.size()), frontend::kMaxStopStrings));
  for (size_t i = 0; i < generation.stop.size(); ++i) {
    RETURN_IF_ERROR(frontend::CheckBytes(absl::StrCat("stop string ", i), generation.stop[i],
                                         frontend::kMaxStopBytes));
  }
  RETURN_IF_ERROR(frontend::CheckCount("stop_token_ids", static_cast<int64_t>(generation.stop_token_ids.size()),
                                       frontend::kMaxStopTokenIds));
  absl::Time deadline = CallDeadline(*context);
  if (started.parsed.timeout.has_value()) {
    deadline = std::min(deadline, absl::Now() + *started.parsed.timeout);
  }
  PromptEncoding encoding;
  encoding.add_special = true;
  encoding.parse_special = started.parsed.parse_special_tokens;
  encoding.check = frontend::CallCheck(context, deadline);
  ASSIGN_OR_RETURN(generation.prompt,
                   EncodeText(*model, started.parsed.text_input, encoding, "input 'text_input'"));
  generation.deadline = deadline;
  started.prompt_tokens = static_cast<int32_t>(generation.prompt.size());
  started.identity = IdentityOf(request);
  if (started.identity.model_name.empty()) started.identity.model_name = model->name;
  started.pump = PumpOptionsFor(context, options_.poll_interval, deadline);
  started.model = model->name;
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
  // The whole stream needs a key; Start checks it again per request.
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
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

grpc::Status KServeService::ModelStatistics(grpc::ServerContext* context,
                                            const inference::ModelStatisticsRequest*,
                                            inference::ModelStatisticsResponse*) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  return ToGrpcStatus(absl::UnimplementedError(
      "ModelStatistics is not implemented by Strata; scrape the coordinator's Prometheus "
      "metrics instead"));
}
grpc::Status KServeService::RepositoryIndex(grpc::ServerContext* context,
                                            const inference::RepositoryIndexRequest*,
                                            inference::RepositoryIndexResponse*) {
  return Unimplemented(*context, "RepositoryIndex");
}
grpc::Status KServeService::RepositoryModelLoad(grpc::ServerContext* context,
                                                const inference::RepositoryModelLoadRequest*,
                                                inference::RepositoryModelLoadResponse*) {
  return Unimplemented(*context, "RepositoryModelLoad");
}
grpc::Status KServeService::RepositoryModelUnload(grpc::ServerContext* context,
                                                  const inference::RepositoryModelUnloadRequest*,
                                                  inference::RepositoryModelUnloadResponse*) {
  return Unimplemented(*context, "RepositoryModelUnload");
}
grpc::Status KServeService::SystemSharedMemoryStatus(
    grpc::ServerContext* context, const inference::SystemSharedMemoryStatusRequest*,
    inference::SystemSharedMemoryStatusResponse*) {
  return Unimplemented(*context, "SystemSharedMemoryStatus");
}
grpc::Status KServeService::SystemSharedMemoryRegister(
    grpc::ServerContext* context, const inference::SystemSharedMemoryRegisterRequest*,
    inference::SystemSharedMemoryRegisterResponse*) {
  return Unimplemented(*context, "SystemSharedMemoryRegister");
}
grpc::Status KServeService::SystemSharedMemoryUnregister(
    grpc::ServerContext* context, const inference::SystemSharedMemoryUnregisterRequest*,
    inference::SystemSharedMemoryUnregisterResponse*) {
  return Unimplemented(*context, "SystemSharedMemoryUnregister");
}
grpc::Status KServeService::CudaSharedMemoryStatus(grpc::ServerContext* context,
                                                   const inference::CudaSharedMemoryStatusRequest*,
                                                   inference::CudaSharedMemoryStatusResponse*) {
  return Unimplemented(*context, "CudaSharedMemoryStatus");
}
grpc::Status KServeService::CudaSharedMemoryRegister(
    grpc::ServerContext* context, const inference::CudaSharedMemoryRegisterRequest*,
    inference::CudaSharedMemoryRegisterResponse*) {
  return Unimplemented(*context, "CudaSharedMemoryRegister");
}
grpc::Status KServeService::CudaSharedMemoryUnregister(
    grpc::ServerContext* context, const inference::CudaSharedMemoryUnregisterRequest*,
    inference::CudaSharedMemoryUnregisterResponse*) {
  return Unimplemented(*context, "CudaSharedMemoryUnregister");
}
grpc::Status KServeService::TraceSetting(grpc::ServerContext* context,
                                         const inference::TraceSettingRequest*,
                                         inference::TraceSettingResponse*) {
  return Unimplemented(*context, "TraceSetting");
}
grpc::Status KServeService::LogSettings(grpc::ServerContext* context, const inference::LogSettingsRequest*,
                                        inference::LogSettingsResponse*) {
  return Unimplemented(*context, "LogSettings");
}

}  // namespace strata::coordinator
