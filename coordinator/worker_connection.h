// The coordinator's end of one worker's WorkerLink.Attach stream.
//
//   gRPC handler thread                 engine loop thread of the replica
//     ReadLoop(): Read() until the        RunStep(plan): Write(plan), then wait
//     stream ends; StepResults are  ───►  for the StepResult with its step_id
//     queued, heartbeats refresh          (UNAVAILABLE when the worker is gone or
//     the liveness clock                  silent for longer than the liveness
//                                         timeout, or with no result for the
//                                         step timeout: the stream is then
//                                         cancelled)
//
// The stream object belongs to the gRPC handler; it stays valid until
// ReadLoop() returns, and Close() (called by the handler after ReadLoop) makes
// every later Send/RunStep fail instead of touching it.
//
// A worker that sends Leave ends ReadLoop at once: the connection is closed
// (every Await/Send fails with UNAVAILABLE "worker ... left ..."), left() is
// true, and the handler answers with AcknowledgeLeave() once the replica let
// go of it.
//
// ReadLoop checks what it queues: a StepResult must answer a plan that is
// out and unanswered (so the queue never outgrows the plans in flight) and a
// Leave's reason is bounded; a violation ends ReadLoop with
// INVALID_ARGUMENT naming the worker and the violation (and logs it). The
// rest of a StepResult is checked by WorkerGroup::Await.
//
// Thread ownership: ReadLoop on the handler thread; RunStep/Shutdown on the
// engine loop thread; alive()/Close() from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "strata/v1/worker.grpc.pb.h"

namespace strata::coordinator {

namespace wire = ::strata::worker::v1;

// How long the coordinator waits on a worker before it gives up on it (its
// stream is then cancelled and the replica treats it as gone).
struct WorkerLinkTimeouts {
  // Nothing heard (no heartbeat, no result) for this long (--worker-liveness-s).
  absl::Duration liveness = absl::Seconds(10);
  // One step's result not back this long after its plan was sent, although
  // heartbeats keep coming: the worker is wedged inside the step (a hung
  // device or collective) and would hold its replica's requests forever
  // (--step-timeout-s).
  absl::Duration step = absl::Seconds(300);
};

class WorkerConnection {
 public:
  using Stream = grpc::ServerReaderWriter<wire::CoordinatorMessage, wire::WorkerMessage>;

  WorkerConnection(grpc::ServerContext* context, Stream* stream, wire::Register registration,
                   std::string worker_id, WorkerLinkTimeouts timeouts);

  const wire::Register& registration() const { return registration_; }
  const std::string& worker_id() const { return worker_id_; }

  // Handler thread: reads until the worker goes away, leaves, or Close().
  // Returns why.
  absl::Status ReadLoop();
  // Handler thread, after ReadLoop returned for a Leave (Close() may have
  // been called; the stream is the handler's until it returns): the Shutdown
  // that tells the worker it may go.
  void AcknowledgeLeave(const std::string& reason);
  // Handler thread, after ReadLoop: no more use of the stream.
  void Close();

  // Engine loop: sends `plan` and waits for its StepResult (Send + Await).
  absl::StatusOr<wire::StepResult> RunStep(const wire::StepPlan& plan);
  // Engine loop: the two halves of RunStep, so a group sends a plan to all of
  // its ranks before waiting for any of them.
  absl::Status Send(const wire::StepPlan& plan);
  absl::StatusOr<wire::StepResult> Await(uint64_t step_id);
  // Any thread (once, when the replica's group is complete): the Registered
  // answer with the group's rendezvous.
  bool SendRegistered(const wire::Registered& registered);
  // Engine loop: asks the worker to finish and close its stream.
  void Shutdown(const std::string& reason);
  // Ends the stream from the coordinator's side (the worker sees it cancelled).
  void Cancel();
  bool alive() const;
  // The worker announced it is leaving (Leave); set before alive() turns false.
  bool left() const;
  // Why the stream ended (OK while it is alive).
  absl::Status end_status() const;
  // Any thread: INVALID_ARGUMENT "worker <id> violated the protocol:
  // <what>", logged, and kept as end_status() unless the stream already
  // ended for another reason (the caller then cuts the worker off: Cancel).
  absl::Status ProtocolViolation(absl::string_view what);

 private:
  bool Write(const wire::CoordinatorMessage& msg);
  // The violation's status, logged (ProtocolViolation without the lock).
  absl::Status Violation(absl::string_view what) const;

  grpc::ServerContext* const context_;
  Stream* const stream_;
  const wire::Register registration_;
  const std::string worker_id_;
  const WorkerLinkTimeouts timeouts_;

  absl::Mutex write_mu_;  // one writer at a time; guards use of stream_ for writes
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool left_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::deque<wire::StepResult> results_ ABSL_GUARDED_BY(mu_);
  absl::Time last_heard_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, absl::Time> sent_at_ ABSL_GUARDED_BY(mu_);  // plans awaiting their result
};

}  // namespace strata::coordinator
