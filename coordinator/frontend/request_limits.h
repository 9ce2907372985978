// Per-field size limits on client requests, checked before any work (before
// the model is looked up, JSON parsed or a prompt tokenized), so an
// oversized request is refused in microseconds with INVALID_ARGUMENT naming
// the field and the limit, instead of after seconds of tokenizing.
//
// The limits follow from two settings:
//   max_request_bytes  (--max-request-bytes, default 8 MiB) the gRPC receive
//                      limit on the client port, and the hard cap of every
//                      field below;
//   max_prompt_tokens  (the model's) prompt text may take
//                      kPromptBytesPerToken bytes per token (generous: English
//                      averages ~4), at least kMinPromptBytes, at most
//                      max_request_bytes; chat content counts all messages.
// Names (model, version, request id, tensor and parameter names, roles) and
// single stop strings have small fixed limits; see the constants.
//
// Thread ownership: immutable values; the checks are stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "coordinator/inference_backend.h"
#include "inference/grpc_service.pb.h"
#include "strata/v1/strata.pb.h"

namespace strata::coordinator::frontend {

inline constexpr int64_t kDefaultMaxRequestBytes = 8 << 20;
inline constexpr int64_t kPromptBytesPerToken = 16;
inline constexpr int64_t kMinPromptBytes = 16 << 10;
inline constexpr int64_t kMaxNameBytes = 256;        // model, version, ids, tensor/parameter names, roles
inline constexpr int64_t kMaxStopBytes = 1024;       // one stop string / stop or bad word
inline constexpr int64_t kMaxStopStrings = 64;
inline constexpr int64_t kMaxStopTokenIds = 1024;
inline constexpr int64_t kMaxJsonBytes = 64 << 10;   // sampling_parameters, string parameters
inline constexpr int64_t kMaxChatMessages = 1024;
inline constexpr int64_t kMaxKServeTensors = 64;     // inputs, outputs, parameters (each)

struct RequestLimits {
  int64_t max_request_bytes = kDefaultMaxRequestBytes;

  // Bytes of prompt text (or of all chat contents) `model` accepts.
  int64_t MaxPromptBytes(const ServedModel& model) const;
};

// INVALID_ARGUMENT "<field>: N bytes exceed the limit of M bytes" when
// value.size() > max_bytes (`why` explains where the limit comes from).
absl::Status CheckBytes(absl::string_view field, absl::string_view value, int64_t max_bytes,
                        absl::string_view why = "");
// INVALID_ARGUMENT "<field>: N entries exceed the limit of M".
absl::Status CheckCount(absl::string_view field, int64_t count, int64_t max_count);

// Model name and version of any request, before the model is looked up.
absl::Status CheckModelName(absl::string_view field, absl::string_view name);

// Every string/bytes/repeated field of a request except the prompt's bytes,
// which need the model: CheckStrataPromptBytes / CheckKServePromptBytes.
absl::Status CheckGenerateRequest(const strata::v1::GenerateRequest& request,
                                  const RequestLimits& limits);
absl::Status CheckTokenizeRequest(const strata::v1::TokenizeRequest& request,
                                  const RequestLimits& limits);
absl::Status CheckDetokenizeRequest(const strata::v1::DetokenizeRequest& request,
                                    const RequestLimits& limits, const ServedModel& model);
absl::Status CheckInferRequest(const inference::ModelInferRequest& request,
                               const RequestLimits& limits);

// The prompt against the model's byte bound: text, or the chat contents summed.
absl::Status CheckPromptText(absl::string_view field, absl::string_view text,
                             const RequestLimits& limits, const ServedModel& model);
absl::Status CheckChatContent(absl::string_view field, const strata::v1::ChatMessages& chat,
                              const RequestLimits& limits, const ServedModel& model);
// KServe: text_input's raw or bytes contents (4-byte length prefixes included).
absl::Status CheckKServePrompt(const inference::ModelInferRequest& request,
                               const RequestLimits& limits, const ServedModel& model);

}  // namespace strata::coordinator::frontend
