#include "coordinator/worker_connection.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/worker_message_validator.h"

namespace strata::coordinator {

WorkerConnection::WorkerConnection(grpc::ServerContext* context, Stream* stream,
                                   wire::Register registration, std::string worker_id,
                                   WorkerLinkTimeouts timeouts)
    : context_(context),
      stream_(stream),
      registration_(std::move(registration)),
      worker_id_(std::move(worker_id)),
      timeouts_(timeouts),
      last_heard_(absl::Now()) {}

absl::Status WorkerConnection::Violation(absl::string_view what) const {
  const std::string why = absl::StrCat("worker ", worker_id_, " violated the protocol: ", what);
  std::fprintf(stderr, "[coordinator] dropping %s\n", why.c_str());
  return absl::InvalidArgumentError(why);
}

absl::Status WorkerConnection::ProtocolViolation(absl::string_view what) {
  const absl::Status why = Violation(what);
  absl::MutexLock lock(&mu_);
  if (end_status_.ok()) end_status_ = why;
  return why;
}

absl::Status WorkerConnection::ReadLoop() {
  wire::WorkerMessage msg;
  while (stream_->Read(&msg)) {
    absl::MutexLock lock(&mu_);
    last_heard_ = absl::Now();
    if (msg.has_step_result()) {
      // Only the answer to a plan that is out and unanswered is queued: a
      // worker cannot grow the queue with results nobody asked for.
      const uint64_t step_id = msg.step_result().step_id();
      if (sent_at_.erase(step_id) == 0) {
        end_status_ = Violation(absl::StrCat("StepResult.step_id ", step_id,
                                             " answers no outstanding StepPlan (or answers one twice)"));
        break;
      }
      results_.push_back(std::move(*msg.mutable_step_result()));
    } else if (msg.has_register_()) {
      end_status_ = absl::FailedPreconditionError(
          absl::StrCat("worker ", worker_id_, " sent Register twice on one stream"));
      break;
    } else if (msg.has_leave()) {
      if (absl::Status valid = ValidateLeave(msg.leave()); !valid.ok()) {
        end_status_ = Violation(valid.message());
        break;
      }
      left_ = true;
      end_status_ = absl::UnavailableError(absl::StrCat(
          "worker ", worker_id_, " left the replica (",
          msg.leave().reason().empty() ? "no reason given" : msg.leave().reason(), ")"));
      break;
    }
    if (closed_) break;
  }
  absl::MutexLock lock(&mu_);
  if (end_status_.ok()) {
    end_status_ = absl::UnavailableError(absl::StrCat("worker ", worker_id_, " disconnected"));
  }
  closed_ = true;
  return end_status_;
}

void WorkerConnection::Close() {
  absl::MutexLock wlock(&write_mu_);  // no write in flight after this
  absl::MutexLock lock(&mu_);
  closed_ = true;
  if (end_status_.ok()) end_status_ = absl::UnavailableError(absl::StrCat("worker ", worker_id_, " closed"));
}

bool WorkerConnection::alive() const {
  absl::MutexLock lock(&mu_);
  return !closed_;
}

bool WorkerConnection::left() const {
  absl::MutexLock lock(&mu_);
  return left_;
}

absl::Status WorkerConnection::end_status() const {
  absl::MutexLock lock(&mu_);
  return end_status_;
}

void WorkerConnection::AcknowledgeLeave(const std::string& reason) {
  // closed_ is set: no engine-loop write can start, and one in progress
  // holds write_mu_ until it is done.
  absl::MutexLock wlock(&write_mu_);
  wire::CoordinatorMessage msg;
  msg.mutable_shutdown()->set_reason(reason);
  stream_->Write(msg);
}

bool WorkerConnection::Write(const wire::CoordinatorMessage& msg) {
  absl::MutexLock wlock(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
  }
  return stream_->Write(msg);
}

void WorkerConnection::Cancel() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (end_status_.ok()) end_status_ = absl::UnavailableError(absl::StrCat("worker ", worker_id_, " cancelled"));
  context_->TryCancel();
}

absl::StatusOr<wire::StepResult> WorkerConnection::RunStep(const wire::StepPlan& plan) {
  if (absl::Status s = Send(plan); !s.ok()) return s;
  return Await(plan.step_id());
}

bool WorkerConnection::SendRegistered(const wire::Registered& registered) {
  wire::CoordinatorMessage msg;
  *msg.mutable_registered() = registered;
  return Write(msg);
}

absl::Status WorkerConnection::Send(const wire::StepPlan& plan) {
  wire::CoordinatorMessage msg;
  *msg.mutable_step_plan() = plan;
  {
    absl::MutexLock lock(&mu_);
    sent_at_[plan.step_id()] = absl::Now();
  }
  if (Write(msg)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return end_status_.ok() ? absl::UnavailableError(absl::StrCat("worker ", worker_id_, " went away"))
                          : end_status_;
}

absl::StatusOr<wire::StepResult> WorkerConnection::Await(uint64_t step_id) {
  absl::MutexLock lock(&mu_);
  for (;;) {
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_ || !results_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
    if (!results_.empty()) {
      wire::StepResult r = std::move(results_.front());
      results_.pop_front();
      if (r.step_id() != step_id) {
        // Plans are answered in order (worker.proto): an answer to a later
        // plan first is a protocol violation.
        end_status_ = Violation(absl::StrCat("answered step ", r.step_id(), " while step ", step_id,
                                             " was expected"));
        context_->TryCancel();
        return end_status_;
      }
      return r;
    }
    if (closed_) return end_status_;
    const absl::Time now = absl::Now();
    if (now - last_heard_ > timeouts_.liveness) {
      end_status_ = absl::UnavailableError(absl::StrCat("worker ", worker_id_, " silent for more than ",
                                                        absl::FormatDuration(timeouts_.liveness)));
      context_->TryCancel();
      return end_status_;
    }
    if (auto it = sent_at_.find(step_id); it != sent_at_.end() && now - it->second > timeouts_.step) {
      end_status_ = absl::UnavailableError(absl::StrCat(
          "worker ", worker_id_, " did not answer step ", step_id, " within ", absl::FormatDuration(timeouts_.step),
          " although its heartbeats kept coming (wedged in the step; --step-timeout-s)"));
      context_->TryCancel();
      return end_status_;
    }
  }
}

void WorkerConnection::Shutdown(const std::string& reason) {
  wire::CoordinatorMessage msg;
  msg.mutable_shutdown()->set_reason(reason);
  Write(msg);
}

}  // namespace strata::coordinator
