// The coordinator's RendezvousStore service (proto/strata/v1/rendezvous.proto):
// the key -> bytes tables a replica's ranks meet through when they set up
// their collective (Gloo addresses, NCCL unique id). Workers reach it with
// parallel::CoordinatorStoreClient.
//
// Scoping: one table per live worker group. When a group forms, its replica
// calls OpenGroup(prefix, token, ranks) (the token travels to the ranks in
// Registered.store_token); a call must carry that token as metadata
// kStoreTokenMetadata and may only name keys under that group's prefix
// ("replica-0/gen-3/"); otherwise PERMISSION_DENIED. (kStoreTokenMetadata
// is in common/join_token.h, shared with the workers' client.) CloseGroup drops the
// group's keys and token and releases its waiting Gets (ABORTED). Before
// any of this the call must pass the WorkerAdmission (join token).
//
// Limits: keys 1..kMaxKeyBytes, values up to kMaxValueBytes
// (INVALID_ARGUMENT naming the limit); per group at most
// RendezvousLimits::max_keys_per_group keys and max_bytes_per_group bytes of
// keys plus values (RESOURCE_EXHAUSTED naming the limit). A Get waits at
// most kMaxWait server-side (clients that want longer call again) and
// answers DEADLINE_EXCEEDED naming the key.
//
// Threading: thread-safe. A Get that has to wait blocks its gRPC thread, in
// slices so that a cancelled call (client gone, server shutting down) is
// released within kCancelPoll. Those parked Gets are bounded, so they cannot
// take every thread of the server: at most parked_gets_per_rank x (the
// group's ranks) per group and max_parked_gets over all groups wait at once;
// a Get beyond that is RESOURCE_EXHAUSTED at once. OpenGroup/CloseGroup may
// be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/worker_admission.h"
#include "grpcpp/grpcpp.h"
#include "parallel/in_memory_store.h"
#include "strata/v1/rendezvous.grpc.pb.h"

namespace strata::coordinator {

struct RendezvousLimits {
  // A TP x PP group of 64 ranks sets a few keys each (addresses, NCCL ids,
  // barrier counters): 1024 leaves ample room, 16 MiB bounds the memory a
  // group can pin to well under the cost of one worker.
  size_t max_keys_per_group = 1024;
  size_t max_bytes_per_group = size_t{16} << 20;
  // A rank waits on one key at a time (a barrier or a peer's address); two
  // per rank absorbs a retry racing the old call's cleanup.
  int32_t parked_gets_per_rank = 2;
  int32_t max_parked_gets = 128;
};

class RendezvousService final : public ::strata::worker::v1::RendezvousStore::Service {
 public:
  static constexpr size_t kMaxKeyBytes = 256;
  static constexpr size_t kMaxValueBytes = size_t{1} << 20;
  static constexpr absl::Duration kMaxWait = absl::Seconds(60);
  static constexpr absl::Duration kCancelPoll = absl::Milliseconds(100);

  // `admission` (null: open) must outlive the service.
  explicit RendezvousService(const WorkerAdmission* admission = nullptr, RendezvousLimits limits = {})
      : admission_(admission), limits_(limits) {}

  grpc::Status Set(grpc::ServerContext* context, const ::strata::worker::v1::SetRequest* request,
                   ::strata::worker::v1::SetResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const ::strata::worker::v1::GetRequest* request,
                   ::strata::worker::v1::GetResponse* response) override;

  // A worker group formed: callers presenting `token` may use keys under
  // `prefix` (which ends with '/'). `ranks` sizes its parked-Get bound.
  // Replaces an earlier group with the same prefix.
  void OpenGroup(const std::string& prefix, const std::string& token, int32_t ranks);
  // The group ended: its keys and token are gone, its waiting Gets end.
  void CloseGroup(const std::string& prefix);
  // Keys held over all groups.
  size_t size() const;
  // Live groups.
  size_t groups() const;

 private:
  struct Group {
    std::string prefix;
    std::string token;
    int32_t ranks = 1;
    std::shared_ptr<parallel::InMemoryStore> store;
    int32_t parked = 0;  // guarded by RendezvousService::mu_
  };

  // The group the call's store token opens, when `key` is under its prefix;
  // the admission check first.
  absl::StatusOr<std::shared_ptr<Group>> Authorize(const grpc::ServerContext& context, const char* what,
                                                   const std::string& key) const;
  // Reserves a parked-Get slot of `group`, or RESOURCE_EXHAUSTED.
  absl::Status Park(Group& group);
  void Unpark(Group& group);

  const WorkerAdmission* const admission_;
  const RendezvousLimits limits_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Group>> groups_ ABSL_GUARDED_BY(mu_);  // by prefix
  int32_t parked_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::coordinator
