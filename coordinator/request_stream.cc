#include "coordinator/request_stream.h"

#include <utility>

namespace strata::coordinator {

absl::StatusOr<std::optional<GenerationChunk>> RequestStream::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (delivered_) return absl::FailedPreconditionError("the request already ended");
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !chunks_.empty() || (ended_ && !error_.ok());
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (!chunks_.empty()) {
    GenerationChunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    if (chunk.finish != FinishReason::kNone) delivered_ = true;
    return std::optional<GenerationChunk>(std::move(chunk));
  }
  if (ended_ && !error_.ok()) {
    delivered_ = true;
    return error_;
  }
  return std::optional<GenerationChunk>();
}

void RequestStream::Cancel(absl::Status why) {
  std::function<void()> notify;
  {
    absl::MutexLock lock(&mu_);
    if (ended_ || cancelled_) return;
    cancelled_ = true;
    cancel_reason_ = why.ok() ? absl::CancelledError("cancelled by the client") : std::move(why);
    notify = on_cancel_;
  }
  if (notify) notify();
}

void RequestStream::Push(GenerationChunk chunk) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  if (!chunk.text.empty() || !chunk.token_ids.empty()) streamed_ = true;
  if (chunk.finish != FinishReason::kNone) ended_ = true;
  chunks_.push_back(std::move(chunk));
}

void RequestStream::Fail(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  if (status.ok()) status = absl::InternalError("request failed without a status");
  ended_ = true;
  error_ = std::move(status);
}

bool RequestStream::IsCancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

absl::Status RequestStream::cancel_reason() const {
  absl::MutexLock lock(&mu_);
  return cancel_reason_;
}

bool RequestStream::HasStreamed() const {
  absl::MutexLock lock(&mu_);
  return streamed_;
}

void RequestStream::set_on_cancel(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  on_cancel_ = std::move(fn);
}

}  // namespace strata::coordinator
