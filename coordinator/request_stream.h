// The channel between one request's frontend call and the engine loop that
// runs it: the engine pushes chunks (or a final error), the frontend pulls
// them; either side may end it.
//
//   frontend thread                       engine loop thread
//     Next(timeout) ◄──── chunk queue ◄──── Push(chunk)  (last: finish != kNone)
//     Cancel() ──────────► cancelled ─────► IsCancelled(): abort, free blocks
//                                           Fail(status)  (UNAVAILABLE, ...)
//
// Thread ownership: thread-safe; one consumer (the frontend call) and any
// number of producers, in practice the engine loop serving the request.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/generation.h"

namespace strata::coordinator {

class RequestStream {
 public:
  RequestStream() = default;
  RequestStream(const RequestStream&) = delete;
  RequestStream& operator=(const RequestStream&) = delete;

  // ---- consumer (frontend)
  // Waits up to `timeout` for the next chunk. Returns the chunk (the last one
  // has finish != kNone), std::nullopt on timeout, or the error that ended
  // the request. After the last chunk or an error, returns FAILED_PRECONDITION.
  absl::StatusOr<std::optional<GenerationChunk>> Next(absl::Duration timeout);
  // The client went away or gave up: the engine aborts the sequence and frees
  // its KV blocks at its next step, ending it with `why` (what the metrics
  // count: CANCELLED for a client that left, DEADLINE_EXCEEDED for a call
  // whose deadline passed). Idempotent (the first reason stays); no effect
  // once finished.
  void Cancel(absl::Status why = absl::CancelledError("cancelled by the client"));

  // ---- producer (engine loop)
  void Push(GenerationChunk chunk);
  // Ends the request with `status` (not OK). Ignored once ended.
  void Fail(absl::Status status);
  bool IsCancelled() const;
  // The reason given to Cancel (OK while not cancelled).
  absl::Status cancel_reason() const;
  // True once a chunk with text or tokens was pushed (a request that streamed
  // nothing yet can be retried on another replica).
  bool HasStreamed() const;
  // Called (on the cancelling thread) after Cancel() marks the stream, so the
  // engine loop can wake up. Set by the core before the stream is handed out.
  void set_on_cancel(std::function<void()> fn);

 private:
  mutable absl::Mutex mu_;
  std::deque<GenerationChunk> chunks_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;      // last chunk or error queued
  bool delivered_ ABSL_GUARDED_BY(mu_) = false;  // consumer has seen the end
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status cancel_reason_ ABSL_GUARDED_BY(mu_);
  bool streamed_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::coordinator
