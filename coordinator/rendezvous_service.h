// The coordinator's RendezvousStore service (proto/strata/v1/rendezvous.proto):
// the key -> bytes table a replica's ranks meet through when they set up
// their collective (Gloo addresses, NCCL unique id), backed by an
// parallel::InMemoryStore. Workers reach it with
// parallel::CoordinatorStoreClient.
//
// Limits: keys 1..kMaxKeyBytes, values up to kMaxValueBytes (INVALID_ARGUMENT
// naming the limit); a Get waits at most kMaxWait server-side (clients that
// want longer call again) and answers DEADLINE_EXCEEDED naming the key.
//
// Threading: thread-safe. Each Get blocks its gRPC thread while it waits, in
// slices so that a cancelled call (client gone, server shutting down) is
// released within kCancelPoll. ErasePrefix may be called from any thread.
#pragma once

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "parallel/in_memory_store.h"
#include "strata/v1/rendezvous.grpc.pb.h"

namespace strata::coordinator {

class RendezvousService final : public ::strata::worker::v1::RendezvousStore::Service {
 public:
  static constexpr size_t kMaxKeyBytes = 256;
  static constexpr size_t kMaxValueBytes = size_t{1} << 20;
  static constexpr absl::Duration kMaxWait = absl::Seconds(60);
  static constexpr absl::Duration kCancelPoll = absl::Milliseconds(100);

  grpc::Status Set(grpc::ServerContext* context, const ::strata::worker::v1::SetRequest* request,
                   ::strata::worker::v1::SetResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const ::strata::worker::v1::GetRequest* request,
                   ::strata::worker::v1::GetResponse* response) override;

  // Drops every key starting with `prefix` (an old replica generation's).
  void ErasePrefix(const std::string& prefix) { store_.ErasePrefix(prefix); }
  // Number of keys held.
  size_t size() const { return store_.size(); }

 private:
  parallel::InMemoryStore store_;
};

}  // namespace strata::coordinator
