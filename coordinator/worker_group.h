// The worker processes of one replica, as the engine loop drives them: one
// process for TP = PP = 1, TP x PP processes otherwise. Every rank gets every
// StepPlan (each keeps the per-sequence state); the group sends a plan to all
// ranks, then waits for all of their StepResults and merges them:
//
//   tokens     from the sampling rank (last pipeline stage, tp rank 0)
//   error      a whole-step error from any rank wins; otherwise the union of
//              the per-sequence errors (ranks validate the same plan alike)
//   execute    the slowest rank's time
//
// Every rank's StepResult is checked (coordinator/worker_message_validator.h)
// before it is merged: a rank that breaks the protocol (a token outside the
// vocabulary, a result for a sequence the step did not schedule, ...) fails
// the step like a dead rank, and the log names the worker and the violation.
//
// One rank failing fails the whole group: the replica abandons its requests
// and cancels every rank's stream, and the ranks re-attach and form a new
// group (a new rendezvous generation, so new communicators).
//
// Threading: Send/RunStep/Shutdown on the replica's engine loop thread;
// alive()/Cancel()/accessors from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/worker_connection.h"
#include "coordinator/worker_message_validator.h"

namespace strata::coordinator {

class WorkerGroup {
 public:
  // `ranks` in world-rank order (pp_stage * tp_size + tp_rank), all non-null.
  // `store_token`: the group's rendezvous-store secret (Registered.store_token).
  WorkerGroup(std::vector<std::shared_ptr<WorkerConnection>> ranks, int32_t tp_size, int32_t pp_size,
              std::string rendezvous, std::string store_token);

  // "r0-w3" or "r0-w3+r0-w4+..." for logs and errors.
  const std::string& worker_id() const { return id_; }
  const std::string& rendezvous() const { return rendezvous_; }
  const std::vector<std::shared_ptr<WorkerConnection>>& ranks() const { return ranks_; }
  // The smallest KV pool over the ranks (the replica's capacity).
  uint32_t kv_capacity_blocks() const;
  bool Contains(const WorkerConnection* conn) const;

  // Sends Registered (rendezvous, store token, every rank's peer address) to
  // each rank. False when some rank is already gone.
  bool SendRegistered();
  // The engine loop may Send several plans (pipeline parallelism keeps up to
  // pp_size in flight) and Await them in order. Await checks every rank's
  // result against `expect`: a violation is INVALID_ARGUMENT naming the
  // worker ("worker r0-w3 violated the protocol: ..."), logged once here.
  // StepError messages in the merged result are cut to
  // kMaxStepErrorMessageBytes.
  absl::Status Send(const wire::StepPlan& plan);
  absl::StatusOr<wire::StepResult> Await(const StepExpectation& expect);
  void Shutdown(const std::string& reason);
  void Cancel();
  bool alive() const;
  // Why the group ended: a rank that left on purpose (Leave) names itself,
  // even when the engine loop first saw another rank's stream cut off;
  // otherwise `fallback`.
  absl::Status EndStatus(absl::Status fallback) const;

 private:
  const std::vector<std::shared_ptr<WorkerConnection>> ranks_;
  const int32_t tp_size_;
  const int32_t pp_size_;
  const std::string rendezvous_;
  const std::string store_token_;
  const std::string id_;
};

}  // namespace strata::coordinator
