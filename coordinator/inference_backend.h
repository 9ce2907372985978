// What the client-facing frontends (KServe v2, strata.v1, health) need from
// the coordinator's core: the served models, their tokenizers, and a way to
// submit a generation. The cluster implements it over replicas of workers;
// frontend unit tests implement it with a fake.
//
// Thread ownership: every method is thread-safe (called from gRPC threads).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/generation.h"
#include "coordinator/request_stream.h"

namespace strata::coordinator {

// A model as clients address it. Owned by the backend; lives as long as it.
struct ServedModel {
  std::string name;
  const Tokenizer* tokenizer = nullptr;
  // Null when the model's template is not supported; chat requests then get
  // UNIMPLEMENTED with chat_template_error.
  const ChatTemplate* chat_template = nullptr;
  std::string chat_template_error;
  int32_t context_length = 0;     // max prompt + generated tokens per sequence
  int32_t vocab_size = 0;
  int32_t max_prompt_tokens = 0;  // server limit, <= context_length - 1
  int32_t max_tokens = 0;         // server limit on generated tokens per request
};

struct ModelStatus {
  std::string name;
  int32_t context_length = 0;
  int32_t vocab_size = 0;
  int32_t ready_replicas = 0;
  int32_t replicas = 0;
};

class InferenceBackend {
 public:
  virtual ~InferenceBackend() = default;

  virtual std::vector<ModelStatus> ListModels() const = 0;
  // NOT_FOUND naming `name` when it is not served; an empty name is the only
  // model (INVALID_ARGUMENT when several are served).
  virtual absl::StatusOr<const ServedModel*> FindModel(absl::string_view name) const = 0;
  // True when at least one replica of `model` can take requests.
  virtual bool IsModelReady(absl::string_view model) const = 0;
  // True when at least one replica of any model can take requests.
  virtual bool IsReady() const = 0;

  // Queues a generation on a replica of `model` and returns its stream.
  // Errors: NOT_FOUND (model), INVALID_ARGUMENT naming the field or limit
  // (empty prompt, prompt longer than max_prompt_tokens, max_tokens over the
  // limit, prompt + max_tokens over context_length, token id outside the
  // vocabulary, sampling out of range), RESOURCE_EXHAUSTED (queue full),
  // UNAVAILABLE (no ready replica). Later errors arrive on the stream.
  virtual absl::StatusOr<std::shared_ptr<RequestStream>> Submit(absl::string_view model,
                                                                GenerationRequest request) = 0;
  // A frontend refused a generation request before Submit (authentication,
  // a size limit, parsing, tokenizing): counted with the errors Submit and
  // the replicas report (strata_request_failure_total{code}), so every
  // refused request is counted exactly once.
  virtual void RecordRejection(absl::StatusCode code) {}
};

}  // namespace strata::coordinator
