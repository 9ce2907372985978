// One model replica as the coordinator drives it: its engine loop thread, its
// scheduler and block allocator, and the worker attached to it.
//
// The engine loop, one iteration:
//
//   take new requests and the worker (re)attaching ─► reap cancelled / late
//   requests ─► schedule (scheduler: tokens per sequence, blocks) ─► execute
//   (StepPlan diff ─► worker ─► StepResult) ─► update (append tokens, stop
//   checks, detokenize, stream chunks)
//
// With pipeline parallelism the execute part keeps up to
// max_steps_in_flight plans outstanding: it schedules and sends plans until
// that many are in flight (each taking about 1/max_steps_in_flight of the
// sequences; a sequence waiting for its sample is not scheduled again), then
// awaits the oldest and updates. The stages then work on different plans at
// once instead of waiting for each other.
//
// When the worker goes away every request of the replica ends: one that has
// not streamed anything yet goes back to the cluster to run elsewhere
// (ReplicaHooks::retry), the others end with UNAVAILABLE. The scheduler is
// rebuilt from the capacity of the next worker that attaches. A worker that
// leaves on purpose (WorkerLink Leave, e.g. on SIGTERM) takes the same path
// at once, and the requests' errors name it ("worker r1-w2 left the replica
// (SIGTERM received)").
//
// Graceful shutdown (coordinator/drain.h): CancelAll(status) ends every
// request the replica holds, and every one it is handed later, with `status`
// at the loop's next iteration, freeing their KV blocks.
//
// Thread ownership: the engine loop thread owns the scheduler, the active
// requests and the current connection. Enqueue/Attach/Detach/Wake and the
// load accessors are thread-safe (gRPC threads call them).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/generation.h"
#include "coordinator/metrics.h"
#include "coordinator/model_metadata.h"
#include "coordinator/request_output.h"
#include "coordinator/request_stream.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_connection.h"
#include "coordinator/worker_group.h"

namespace strata::coordinator {

// A request on its way to a replica.
struct PendingRequest {
  int64_t seq_id = 0;
  GenerationRequest request;   // validated, seed set, max_tokens resolved
  std::shared_ptr<RequestStream> stream;
  absl::Time submitted;
  int32_t attempts = 0;        // replicas it was sent to before
};

struct ReplicaConfig {
  int32_t index = 0;
  const ModelMetadata* model = nullptr;
  SchedulerConfig scheduler;   // num_blocks comes from the workers
  int32_t tp_size = 1;         // worker processes per pipeline stage
  int32_t pp_size = 1;         // pipeline stages
  // Plans sent before the oldest one's result is back (0: pp_size). With
  // pipeline stages, k plans in flight keep k stages busy at once.
  int32_t max_steps_in_flight = 0;
};

struct ReplicaHooks {
  // A request the replica could not run and that streamed nothing: run it elsewhere.
  std::function<void(PendingRequest)> retry;
  // The replica became ready or stopped being ready.
  std::function<void()> readiness_changed;
  // A worker group formed: its ranks may use the rendezvous keys under
  // `prefix` ("replica-0/gen-3/") with `store_token` (sent to them in
  // Registered). Called under the replica's lock, before Registered goes out.
  std::function<void(const std::string& prefix, const std::string& store_token, int32_t ranks)>
      rendezvous_opened;
  // A worker group ended: the rendezvous keys under this prefix are dead.
  std::function<void(const std::string& prefix)> rendezvous_retired;
};

class Replica {
 public:
  Replica(ReplicaConfig config, ReplicaHooks hooks, Metrics* metrics);
  ~Replica();  // stops the engine loop; running requests end with UNAVAILABLE
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  int32_t index() const { return config_.index; }
  // Attached worker registered and adopted by the engine loop.
  bool ready() const { return ready_.load(); }
  // Requests enqueued and not finished.
  int32_t outstanding() const { return outstanding_.load(); }
  // Requests enqueued and not yet scheduled for the first time.
  int32_t queued() const { return queued_.load(); }
  // KV blocks held by requests (not free), as of the loop's last iteration.
  int32_t kv_blocks_used() const { return kv_blocks_used_.load(); }
  // How many leading blocks of this prefix-hash chain the replica's prefix
  // cache holds (a mirror of its allocator's index, updated by the loop).
  int32_t CachedPrefixBlocks(const std::vector<uint64_t>& chain) const;

  // A worker registered for this replica as one of its tp_size x pp_size
  // ranks. When the last rank of a group arrives every rank gets Registered
  // (with a fresh rendezvous prefix) and the group becomes the replica's.
  // ALREADY_EXISTS when that rank is already attached (or the replica has a
  // complete live group); FAILED_PRECONDITION when the rank's model
  // fingerprint differs from the other ranks'.
  absl::Status Attach(std::shared_ptr<WorkerConnection> conn);
  // The worker's stream ended (called by its handler after ReadLoop). A rank
  // of the live group ending ends the group: every other rank is cancelled.
  void Detach(const WorkerConnection* conn);
  void Enqueue(PendingRequest request);
  // Something changed (a cancellation): run an iteration soon.
  void Wake();
  // Ends every request the replica holds or is handed from now on with
  // `status` (sticky; the loop applies it at its next iteration, after the
  // step it is awaiting, aborting the sequences and freeing their blocks).
  void CancelAll(absl::Status status);
  // Asks the attached worker (and ranks waiting for a group) to shut down and
  // stops the loop.
  void Stop();

 private:
  struct Active {
    PendingRequest pending;
    RequestOutput output;
    int32_t worker_known_tokens = 0;  // tokens the worker holds for it
    bool scheduled_once = false;
    absl::Time last_token;
  };

  void Loop();
  void SyncConnection(const std::shared_ptr<WorkerGroup>& attached);
  void Admit(PendingRequest request);
  void Reap();
  void Step();
  void Abandon(const absl::Status& why);       // worker lost: retry or fail every request
  // The status requests get when the group `conn_` ended as `seen` (a rank
  // that left names itself), prefixed with the replica.
  absl::Status GroupEnded(const absl::Status& seen) const;
  void CancelActive(const absl::Status& status);
  void EndGroupLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndWithError(int64_t seq_id, const absl::Status& status);
  void Complete(Active& a, GenerationChunk chunk);
  wire::StepPlan BuildPlan(const SchedulerOutput& out);
  void PublishGauges();

  const ReplicaConfig config_;
  const ReplicaHooks hooks_;
  Metrics* const metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<int32_t> outstanding_{0};
  std::atomic<int32_t> queued_{0};
  std::atomic<int32_t> kv_blocks_used_{0};

  mutable absl::Mutex cache_mu_;
  absl::flat_hash_set<uint64_t> cached_hashes_ ABSL_GUARDED_BY(cache_mu_);

  absl::Mutex mu_;
  std::vector<PendingRequest> inbox_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<WorkerGroup> attached_ ABSL_GUARDED_BY(mu_);
  // Ranks registered for the next group, by world rank (pp_stage * tp_size + tp_rank).
  std::vector<std::shared_ptr<WorkerConnection>> forming_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status cancel_all_ ABSL_GUARDED_BY(mu_);  // not OK once CancelAll was called

  // Engine loop thread only.
  std::shared_ptr<WorkerGroup> conn_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unordered_map<int64_t, Active> active_;
  absl::Status cancelled_;  // the loop's copy of cancel_all_
  uint64_t step_id_ = 0;
  bool stalled_ = false;  // last Schedule() had nothing to run and nothing is in flight
  struct InFlight {
    uint64_t step_id = 0;
    // What the plan named, for checking the workers' answer to it
    // (StepExpectation): the sequences it scheduled, and those plus the
    // finished and preempted ones.
    absl::flat_hash_set<uint64_t> scheduled;
    absl::flat_hash_set<uint64_t> mentioned;
    int32_t total_tokens = 0;
    int32_t num_seqs = 0;
    int32_t num_preempted = 0;
    absl::Time sent;
  };
  std::deque<InFlight> in_flight_;
  // Finished / preempted ids of a schedule that had nothing to run: they go
  // out with the next plan.
  std::vector<int64_t> carried_finished_, carried_preempted_;
  int64_t reported_queries_ = 0;  // prefix-cache counters already added to metrics
  int64_t reported_hits_ = 0;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace strata::coordinator
