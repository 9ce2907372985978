// The worker's end of WorkerLink.Attach (strata/v1/worker.proto): dials the
// coordinator, registers, then executes the StepPlans it is sent.
//
//   Attach():  dial (retry, capped backoff, until connect_timeout)
//              ─► Register ─► wait for Registered (sent once every rank of
//              the replica registered) ─► executor.Connect(rendezvous)
//              ─► loop { Read StepPlan ─► executor.Execute ─► Write StepResult }
//              until Shutdown (OK), Stop() (CANCELLED), Leave() (OK) or the
//              stream breaking (UNAVAILABLE).
//   Run():     Attach() again and again: after a broken stream the executor is
//              Reset() (a re-attached worker registers anew with no
//              per-sequence state; weights stay loaded) and the worker dials
//              again. Returns OK after Shutdown or Stop(), the error otherwise
//              (coordinator unreachable for connect_timeout, or a registration
//              the coordinator refused for good: FAILED_PRECONDITION,
//              UNIMPLEMENTED, NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED,
//              UNAUTHENTICATED before Registered).
//
// Threads:
//   step thread   calls Run()/Attach(); the only caller of the executor and
//                 of Read(); writes StepResults.
//   heartbeat     one per attachment, started after Register is written,
//                 joined before Attach returns; writes a Heartbeat every
//                 heartbeat_interval. Writes of both threads go through
//                 write_mu_ (a grpc::ClientReaderWriter allows one writer).
//   any thread    Stop(): cancels the current call and the dial/backoff
//                 waits. Leave() (the process's signal watcher on SIGTERM):
//                 sends Leave on the current stream and waits, at most
//                 leave_timeout, for the coordinator's Shutdown to end the
//                 attachment; plans arriving meanwhile are not executed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "strata/v1/worker.grpc.pb.h"
#include "worker/step_executor.h"

namespace strata {

inline constexpr uint32_t kWorkerProtocolVersion = 1;

struct CoordinatorLinkConfig {
  std::string coordinator_address;  // HOST:PORT (or a gRPC target such as unix:PATH)
  uint32_t replica = 0;
  uint32_t pp_stage = 0;
  uint32_t pp_size = 1;
  uint32_t tp_rank = 0;
  uint32_t tp_size = 1;
  std::string device = "cpu";
  // Address the replica's other ranks reach this worker at (Register.peer_address).
  std::string peer_address;
  // How long one attachment keeps dialing an unreachable coordinator.
  absl::Duration connect_timeout = absl::Seconds(120);
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Reconnect backoff starts here and doubles up to max_backoff.
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // Leave(): how long to wait for the coordinator's answer (its Shutdown and
  // the stream's end) before cancelling the call. A step being executed when
  // Leave() is called finishes first, so the bound is this plus one step.
  absl::Duration leave_timeout = absl::Seconds(5);
  std::string log_prefix = "[worker]";
  // Channel credentials for the coordinator's worker port (TLS / mutual TLS,
  // common/net/transport_security.h); null: plaintext. tls_server_name: the
  // name the coordinator's certificate must carry when it differs from the
  // address's host (empty: the host).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string tls_server_name;
  // Sent as metadata x-strata-join-token on every Attach (--join-token-file;
  // empty: none). Never logged.
  std::string join_token;
  // Step thread, on each Registered, before the executor connects: the
  // worker group's rendezvous-store token (Registered.store_token), for the
  // store client. Optional.
  std::function<void(const std::string& store_token)> store_token_changed;
};

class CoordinatorLink {
 public:
  // `executor` must outlive the link; the link is its only user while Run or
  // Attach runs.
  CoordinatorLink(CoordinatorLinkConfig config, StepExecutor* executor);
  CoordinatorLink(const CoordinatorLink&) = delete;
  CoordinatorLink& operator=(const CoordinatorLink&) = delete;

  // Step thread. See the header comment for the statuses.
  absl::Status Run();
  absl::Status Attach();

  // Any thread, async-signal-unsafe (call it from a watcher thread, not a
  // signal handler). Run/Attach return soon after; later calls return at once.
  void Stop();
  bool stopped() const { return stopped_.load(); }
  // Any thread: how long the step being executed has been running (zero
  // between steps). A watchdog's input (worker/step_watchdog.h).
  absl::Duration StepRunningFor() const;
  // Any thread (not a signal handler): leave the replica cleanly. When
  // attached, tells the coordinator (WorkerLink Leave with `reason`), so it
  // takes the replica out of service at once instead of noticing a broken
  // stream, and blocks until the attachment ended (the coordinator answers
  // with Shutdown) or leave_timeout passed (then cancels the call). Not
  // attached (dialing, backing off): the same as Stop(). Run/Attach return OK
  // and never attach again. Later calls (and Stop after it) return at once.
  void Leave(const std::string& reason);

  // The Register message this worker sends (for logs and tests).
  strata::worker::v1::Register MakeRegister() const;

 private:
  using Stream = grpc::ClientReaderWriter<strata::worker::v1::WorkerMessage,
                                          strata::worker::v1::CoordinatorMessage>;

  void Log(absl::string_view message) const;
  // Waits for the channel to be READY; DEADLINE_EXCEEDED / CANCELLED.
  absl::Status Dial(grpc::Channel* channel);
  bool Write(Stream* stream, const strata::worker::v1::WorkerMessage& msg);
  void HeartbeatLoop(Stream* stream);
  // Sleeps `d` unless Stop() comes first; false when stopped.
  bool SleepUnlessStopped(absl::Duration d);
  bool HeartbeatShouldEnd() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AttachmentEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return context_ == nullptr; }

  const CoordinatorLinkConfig config_;
  StepExecutor* const executor_;

  std::atomic<bool> stopped_{false};
  std::atomic<bool> leaving_{false};  // Leave sent: execute no more plans
  std::atomic<uint64_t> last_completed_step_{0};
  std::atomic<int64_t> step_started_ns_{0};  // unix ns when the running step began; 0 between steps
  absl::Time registered_at_ = absl::InfinitePast();  // step thread only

  absl::Mutex mu_;  // guards the current call's context and wakes waits
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;  // mirrors stopped_ for waits
  bool heartbeat_done_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex write_mu_;  // serializes Write/WritesDone on the current stream
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;  // the current attachment's, for Leave()
};

}  // namespace strata
