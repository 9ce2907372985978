#include "coordinator/frontend/strata_service.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/unicode_bytes.h"
#include "coordinator/frontend/call_context.h"
#include "coordinator/frontend/model_lookup.h"
#include "coordinator/frontend/quote.h"
#include "coordinator/grpc_status.h"
#include "coordinator/frontend/prompt_encoder.h"
#include "coordinator/frontend/request_pump.h"

namespace strata::coordinator {
namespace {

using frontend::CallCheck;
using frontend::CallDeadline;
using frontend::CheckTokenIds;
using frontend::EncodeText;
using frontend::PromptEncoding;
using frontend::ModelTokenizer;
using frontend::PumpOptions;
using frontend::PumpOptionsFor;
using frontend::PumpRequestStream;

std::vector<ChatMessage> ToChatMessages(const strata::v1::ChatMessages& chat) {
  std::vector<ChatMessage> out;
  out.reserve(chat.messages_size());
  for (const auto& m : chat.messages()) out.push_back({m.role(), m.content()});
  return out;
}

absl::StatusOr<std::vector<int32_t>> EncodeChat(const ServedModel& model,
                                                const strata::v1::ChatMessages& chat,
                                                const PromptEncoding& encoding, absl::string_view field) {
  const bool add_generation_prompt =
      chat.has_add_generation_prompt() ? chat.add_generation_prompt() : true;
  return frontend::EncodeChat(model, ToChatMessages(chat), add_generation_prompt, encoding,
                              absl::StrCat(field, ".messages"));
}

// Output text fields are proto3 strings: they must be valid UTF-8, or the
// client cannot parse the response.
std::string ValidUtf8(std::string_view text) { return tokenizer_internal::SanitizeUtf8(text); }

strata::v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return strata::v1::FINISH_REASON_STOP;
    case FinishReason::kLength:
      return strata::v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return strata::v1::FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
      break;
  }
  return strata::v1::FINISH_REASON_UNSPECIFIED;
}

void ApplySampling(const strata::v1::SamplingParams& in, SamplingParams* out) {
  if (in.has_temperature()) out->temperature = in.temperature();
  if (in.has_top_k()) out->top_k = in.top_k();
  if (in.has_top_p()) out->top_p = in.top_p();
  if (in.has_min_p()) out->min_p = in.min_p();
  if (in.has_seed()) out->seed = in.seed();
  if (in.has_repetition_penalty()) out->repetition_penalty = in.repetition_penalty();
}

}  // namespace

StrataService::StrataService(InferenceBackend* backend, StrataServiceOptions options)
    : backend_(backend), options_(options) {}

absl::Status StrataService::Authenticate(const grpc::ServerContext& context) const {
  if (options_.api_keys == nullptr) return absl::OkStatus();
  return options_.api_keys->Check(context);
}

absl::StatusOr<StrataService::Prepared> StrataService::PrepareGenerate(
    grpc::ServerContext* context, const strata::v1::GenerateRequest& request) {
  RETURN_IF_ERROR(Authenticate(*context));
  RETURN_IF_ERROR(frontend::CheckGenerateRequest(request, options_.limits));
  ASSIGN_OR_RETURN(const ServedModel* model, frontend::LookUpModel(*backend_, "model", request.model()));
  GenerationRequest generation;
  generation.deadline = CallDeadline(*context);
  PromptEncoding encoding;
  encoding.add_special = true;
  encoding.parse_special = request.parse_special_tokens();
  encoding.check = CallCheck(context, generation.deadline);
  switch (request.prompt_case()) {
    case strata::v1::GenerateRequest::kText: {
      RETURN_IF_ERROR(frontend::CheckPromptText("text", request.text(), options_.limits, *model));
      ASSIGN_OR_RETURN(generation.prompt, EncodeText(*model, request.text(), encoding, "text"));
      break;
    }
    case strata::v1::GenerateRequest::kTokenIds:
      if (model->max_prompt_tokens > 0 && request.token_ids().ids_size() > model->max_prompt_tokens) {
        return absl::InvalidArgumentError(absl::StrCat("token_ids.ids: ", request.token_ids().ids_size(),
                                                       " tokens exceed the limit of max_prompt_tokens = ",
                                                       model->max_prompt_tokens));
      }
      generation.prompt.assign(request.token_ids().ids().begin(), request.token_ids().ids().end());
      RETURN_IF_ERROR(CheckTokenIds(*model, generation.prompt, "token_ids.ids"));
      break;
    case strata::v1::GenerateRequest::kChat: {
      RETURN_IF_ERROR(frontend::CheckChatContent("chat.messages", request.chat(), options_.limits, *model));
      ASSIGN_OR_RETURN(generation.prompt, EncodeChat(*model, request.chat(), encoding, "chat"));
      break;
    }
    case strata::v1::GenerateRequest::PROMPT_NOT_SET:
      return absl::InvalidArgumentError("prompt: set one of text, token_ids or chat");
  }
  if (generation.prompt.empty()) {
    return absl::InvalidArgumentError("prompt: it encodes to no tokens");
  }
  ApplySampling(request.sampling(), &generation.sampling);
  RETURN_IF_ERROR(ValidateSamplingParams(generation.sampling));
  if (request.max_tokens() > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens: ", request.max_tokens(), " is too large"));
  }
  generation.max_tokens = static_cast<int32_t>(request.max_tokens());
  if (request.min_tokens() > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("min_tokens: ", request.min_tokens(), " is too large"));
  }
  generation.min_tokens = static_cast<int32_t>(request.min_tokens());
  generation.stop.assign(request.stop().begin(), request.stop().end());
  for (size_t i = 0; i < generation.stop.size(); ++i) {
    if (generation.stop[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop[", i, "] is empty"));
    }
  }
  generation.stop_token_ids.assign(request.stop_token_ids().begin(),
                                   request.stop_token_ids().end());
  RETURN_IF_ERROR(CheckTokenIds(*model, generation.stop_token_ids, "stop_token_ids"));
  generation.ignore_eos = request.ignore_eos();
  generation.logprobs = request.logprobs();
  generation.priority = request.priority();
  generation.request_id = request.request_id();
  return Prepared{model->name, std::move(generation)};
}

absl::Status StrataService::DoGenerate(
    grpc::ServerContext* context, const strata::v1::GenerateRequest& request,
    grpc::ServerWriterInterface<strata::v1::GenerateResponse>* writer) {
  absl::StatusOr<Prepared> prepared = PrepareGenerate(context, request);
  if (!prepared.ok()) {
    backend_->RecordRejection(prepared.status().code());
    return prepared.status();
  }
  GenerationRequest& generation = prepared->generation;
  const PumpOptions pump = PumpOptionsFor(context, options_.poll_interval, generation.deadline);
  const bool logprobs = generation.logprobs;
  ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream,
                   backend_->Submit(prepared->model, std::move(generation)));
  return PumpRequestStream(*stream, pump, [&](const GenerationChunk& chunk) -> absl::Status {
    strata::v1::GenerateResponse response;
    response.set_text(ValidUtf8(chunk.text));
    response.mutable_token_ids()->Add(chunk.token_ids.begin(), chunk.token_ids.end());
    if (logprobs) response.mutable_logprobs()->Add(chunk.logprobs.begin(), chunk.logprobs.end());
    if (chunk.finish != FinishReason::kNone) {
      response.set_finish_reason(ToProto(chunk.finish));
      response.mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(chunk.prompt_tokens));
      response.mutable_usage()->set_completion_tokens(
          static_cast<uint32_t>(chunk.completion_tokens));
    }
    if (!writer->Write(response)) return absl::CancelledError("the client went away");
    return absl::OkStatus();
  });
}

grpc::Status StrataService::Generate(grpc::ServerContext* context,
                                     const strata::v1::GenerateRequest* request,
                                     grpc::ServerWriter<strata::v1::GenerateResponse>* writer) {
  return ToGrpcStatus(DoGenerate(context, *request, writer));
}

absl::StatusOr<strata::v1::TokenizeResponse> StrataService::DoTokenize(
    grpc::ServerContext* context, const strata::v1::TokenizeRequest& request) const {
  RETURN_IF_ERROR(Authenticate(*context));
  RETURN_IF_ERROR(frontend::CheckTokenizeRequest(request, options_.limits));
  ASSIGN_OR_RETURN(const ServedModel* model, frontend::LookUpModel(*backend_, "model", request.model()));
  PromptEncoding encoding;
  encoding.add_special = request.add_special_tokens();
  encoding.parse_special = request.parse_special_tokens();
  encoding.check = CallCheck(context, CallDeadline(*context));
  std::vector<int32_t> ids;
  switch (request.input_case()) {
    case strata::v1::TokenizeRequest::kText: {
      RETURN_IF_ERROR(frontend::CheckPromptText("text", request.text(), options_.limits, *model));
      ASSIGN_OR_RETURN(ids, EncodeText(*model, request.text(), encoding, "text"));
      break;
    }
    case strata::v1::TokenizeRequest::kChat: {
      RETURN_IF_ERROR(frontend::CheckChatContent("chat.messages", request.chat(), options_.limits, *model));
      ASSIGN_OR_RETURN(ids, EncodeChat(*model, request.chat(), encoding, "chat"));
      break;
    }
    case strata::v1::TokenizeRequest::INPUT_NOT_SET:
      return absl::InvalidArgumentError("input: set one of text or chat");
  }
  strata::v1::TokenizeResponse response;
  response.mutable_token_ids()->Add(ids.begin(), ids.end());
  return response;
}

grpc::Status StrataService::Tokenize(grpc::ServerContext* context,
                                     const strata::v1::TokenizeRequest* request,
                                     strata::v1::TokenizeResponse* response) {
  absl::StatusOr<strata::v1::TokenizeResponse> r = DoTokenize(context, *request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *response = std::move(*r);
  return grpc::Status::OK;
}

absl::StatusOr<strata::v1::DetokenizeResponse> StrataService::DoDetokenize(
    const strata::v1::DetokenizeRequest& request) const {
  ASSIGN_OR_RETURN(const ServedModel* model, frontend::LookUpModel(*backend_, "model", request.model()));
  RETURN_IF_ERROR(frontend::CheckDetokenizeRequest(request, options_.limits, *model));
  const std::vector<int32_t> ids(request.token_ids().begin(), request.token_ids().end());
  RETURN_IF_ERROR(CheckTokenIds(*model, ids, "token_ids"));
  ASSIGN_OR_RETURN(const Tokenizer* tokenizer, ModelTokenizer(*model));
  strata::v1::DetokenizeResponse response;
  response.set_text(ValidUtf8(tokenizer->Decode(ids, request.skip_special_tokens())));
  return response;
}

grpc::Status StrataService::Detokenize(grpc::ServerContext* context,
                                       const strata::v1::DetokenizeRequest* request,
                                       strata::v1::DetokenizeResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  absl::StatusOr<strata::v1::DetokenizeResponse> r = DoDetokenize(*request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *response = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status StrataService::ListModels(grpc::ServerContext* context, const strata::v1::ListModelsRequest*,
                                       strata::v1::ListModelsResponse* response) {
  if (absl::Status auth = Authenticate(*context); !auth.ok()) return ToGrpcStatus(auth);
  for (const ModelStatus& m : backend_->ListModels()) {
    strata::v1::ModelInfo* info = response->add_models();
    info->set_name(m.name);
    info->set_context_length(static_cast<uint32_t>(std::max(0, m.context_length)));
    info->set_vocab_size(static_cast<uint32_t>(std::max(0, m.vocab_size)));
    info->set_ready_replicas(static_cast<uint32_t>(std::max(0, m.ready_replicas)));
    info->set_replicas(static_cast<uint32_t>(std::max(0, m.replicas)));
  }
  return grpc::Status::OK;
}

}  // namespace strata::coordinator
