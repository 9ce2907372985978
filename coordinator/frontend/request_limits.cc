#include "coordinator/frontend/request_limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/frontend/quote.h"

namespace strata::coordinator::frontend {
namespace {

absl::Status CheckParameters(absl::string_view field,
                             const google::protobuf::Map<std::string, inference::InferParameter>& params) {
  RETURN_IF_ERROR(CheckCount(field, static_cast<int64_t>(params.size()), kMaxKServeTensors));
  for (const auto& [key, value] : params) {
    RETURN_IF_ERROR(CheckBytes(absl::StrCat(field, " key"), key, kMaxNameBytes));
    if (value.parameter_choice_case() == inference::InferParameter::kStringParam) {
      RETURN_IF_ERROR(CheckBytes(absl::StrCat(field, " ", QuoteForError(key)), value.string_param(),
                                 kMaxJsonBytes));
    }
  }
  return absl::OkStatus();
}

int64_t ContentBytes(const inference::ModelInferRequest::InferInputTensor& t) {
  int64_t n = 0;
  for (const std::string& b : t.contents().bytes_contents()) n += static_cast<int64_t>(b.size()) + 4;
  return n;
}

}  // namespace

int64_t RequestLimits::MaxPromptBytes(const ServedModel& model) const {
  const int64_t by_tokens = std::max<int64_t>(kMinPromptBytes, kPromptBytesPerToken * model.max_prompt_tokens);
  return std::min(by_tokens, max_request_bytes);
}

absl::Status CheckBytes(absl::string_view field, absl::string_view value, int64_t max_bytes,
                        absl::string_view why) {
  if (static_cast<int64_t>(value.size()) <= max_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", value.size(), " bytes exceed the limit of ",
                                                 max_bytes, " bytes", why.empty() ? "" : " (", why,
                                                 why.empty() ? "" : ")"));
}

absl::Status CheckCount(absl::string_view field, int64_t count, int64_t max_count) {
  if (count <= max_count) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", count, " entries exceed the limit of ", max_count));
}

absl::Status CheckModelName(absl::string_view field, absl::string_view name) {
  return CheckBytes(field, name, kMaxNameBytes);
}

namespace {

// The message count and the roles' sizes; contents are bounded with the
// model's prompt limit (CheckChatContent).
absl::Status CheckChatShape(const strata::v1::ChatMessages& chat) {
  RETURN_IF_ERROR(CheckCount("chat.messages", chat.messages_size(), kMaxChatMessages));
  for (int i = 0; i < chat.messages_size(); ++i) {
    RETURN_IF_ERROR(CheckBytes(absl::StrCat("chat.messages[", i, "].role"), chat.messages(i).role(), kMaxNameBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckGenerateRequest(const strata::v1::GenerateRequest& r, const RequestLimits& limits) {
  RETURN_IF_ERROR(CheckModelName("model", r.model()));
  RETURN_IF_ERROR(CheckBytes("request_id", r.request_id(), kMaxNameBytes));
  RETURN_IF_ERROR(CheckBytes("text", r.text(), limits.max_request_bytes, "--max-request-bytes"));
  RETURN_IF_ERROR(CheckCount("stop", r.stop_size(), kMaxStopStrings));
  for (int i = 0; i < r.stop_size(); ++i) {
    RETURN_IF_ERROR(CheckBytes(absl::StrCat("stop[", i, "]"), r.stop(i), kMaxStopBytes));
  }
  RETURN_IF_ERROR(CheckCount("stop_token_ids", r.stop_token_ids_size(), kMaxStopTokenIds));
  if (r.has_chat()) RETURN_IF_ERROR(CheckChatShape(r.chat()));
  return absl::OkStatus();
}

absl::Status CheckTokenizeRequest(const strata::v1::TokenizeRequest& r, const RequestLimits& limits) {
  RETURN_IF_ERROR(CheckModelName("model", r.model()));
  RETURN_IF_ERROR(CheckBytes("text", r.text(), limits.max_request_bytes, "--max-request-bytes"));
  if (r.has_chat()) RETURN_IF_ERROR(CheckChatShape(r.chat()));
  return absl::OkStatus();
}

absl::Status CheckDetokenizeRequest(const strata::v1::DetokenizeRequest& r, const RequestLimits&,
                                    const ServedModel& model) {
  // A whole sequence (prompt + generated) is the most a client needs back.
  const int64_t max_ids = std::max<int64_t>(model.context_length, kMaxStopTokenIds);
  return CheckCount("token_ids", r.token_ids_size(), max_ids);
}

absl::Status CheckInferRequest(const inference::ModelInferRequest& r, const RequestLimits& limits) {
  RETURN_IF_ERROR(CheckModelName("model_name", r.model_name()));
  RETURN_IF_ERROR(CheckBytes("model_version", r.model_version(), kMaxNameBytes));
  RETURN_IF_ERROR(CheckBytes("id", r.id(), kMaxNameBytes));
  RETURN_IF_ERROR(CheckParameters("parameters", r.parameters()));
  RETURN_IF_ERROR(CheckCount("inputs", r.inputs_size(), kMaxKServeTensors));
  RETURN_IF_ERROR(CheckCount("raw_input_contents", r.raw_input_contents_size(), kMaxKServeTensors));
  for (int i = 0; i < r.inputs_size(); ++i) {
    const auto& t = r.inputs(i);
    RETURN_IF_ERROR(CheckBytes(absl::StrCat("inputs[", i, "].name"), t.name(), kMaxNameBytes));
    const std::string field = absl::StrCat("input ", QuoteForError(t.name()));
    RETURN_IF_ERROR(CheckBytes(absl::StrCat(field, " datatype"), t.datatype(), kMaxNameBytes));
    RETURN_IF_ERROR(CheckCount(absl::StrCat(field, " shape"), t.shape_size(), 8));
    RETURN_IF_ERROR(CheckParameters(absl::StrCat(field, " parameters"), t.parameters()));
    // The prompt's own (model-dependent) bound is CheckKServePrompt's.
    const int64_t max = t.name() == "text_input" ? limits.max_request_bytes : kMaxJsonBytes;
    if (ContentBytes(t) > max) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", ContentBytes(t),
                                                     " bytes of contents exceed the limit of ", max, " bytes"));
    }
    if (i < r.raw_input_contents_size()) {
      RETURN_IF_ERROR(CheckBytes(absl::StrCat(field, " (raw_input_contents[", i, "])"), r.raw_input_contents(i),
                                 max));
    }
  }
  RETURN_IF_ERROR(CheckCount("outputs", r.outputs_size(), kMaxKServeTensors));
  for (int i = 0; i < r.outputs_size(); ++i) {
    RETURN_IF_ERROR(CheckBytes(absl::StrCat("outputs[", i, "].name"), r.outputs(i).name(), kMaxNameBytes));
    RETURN_IF_ERROR(CheckParameters(absl::StrCat("outputs[", i, "].parameters"), r.outputs(i).parameters()));
  }
  return absl::OkStatus();
}

absl::Status CheckPromptText(absl::string_view field, absl::string_view text, const RequestLimits& limits,
                             const ServedModel& model) {
  return CheckBytes(field, text, limits.MaxPromptBytes(model),
                    absl::StrCat(kPromptBytesPerToken, " bytes per token of max_prompt_tokens = ",
                                 model.max_prompt_tokens, ", at most --max-request-bytes"));
}

absl::Status CheckChatContent(absl::string_view field, const strata::v1::ChatMessages& chat,
                              const RequestLimits& limits, const ServedModel& model) {
  int64_t total = 0;
  for (const auto& m : chat.messages()) total += static_cast<int64_t>(m.content().size());
  const int64_t max = limits.MaxPromptBytes(model);
  if (total <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": the contents total ", total, " bytes, over the limit of ", max, " bytes (", kPromptBytesPerToken,
      " bytes per token of max_prompt_tokens = ", model.max_prompt_tokens, ", at most --max-request-bytes)"));
}

absl::Status CheckKServePrompt(const inference::ModelInferRequest& r, const RequestLimits& limits,
                               const ServedModel& model) {
  const int64_t max = limits.MaxPromptBytes(model) + 4;  // + the BYTES length prefix
  for (int i = 0; i < r.inputs_size(); ++i) {
    if (r.inputs(i).name() != "text_input") continue;
    int64_t bytes = ContentBytes(r.inputs(i));
    if (i < r.raw_input_contents_size()) bytes += static_cast<int64_t>(r.raw_input_contents(i).size());
    if (bytes > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input 'text_input': ", bytes, " bytes exceed the limit of ", max, " bytes (", kPromptBytesPerToken,
          " bytes per token of max_prompt_tokens = ", model.max_prompt_tokens,
          " + 4, at most --max-request-bytes)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::coordinator::frontend
