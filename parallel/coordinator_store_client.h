// KeyValueStore over the coordinator's RendezvousStore gRPC service
// (coordinator/rendezvous_service.h): how a worker's ranks meet their peers.
//
// Get waits server-side; a wait longer than the server's cap (60 s) is split
// into several calls, so the caller's timeout is honoured whatever it is.
// Errors are Statuses whose message starts with "rendezvous store at
// <target>: "; a key nobody set is DEADLINE_EXCEEDED naming the key.
//
// Threading: thread-safe (one gRPC channel, calls from any thread).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "parallel/key_value_store.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace strata::parallel {

class CoordinatorStoreClient : public KeyValueStore {
 public:
  // `target`: the coordinator's gRPC address ("host:port", "dns:///svc:port").
  // Connects lazily: an unreachable coordinator shows up in Set/Get.
  static absl::StatusOr<std::unique_ptr<CoordinatorStoreClient>> Create(std::string target);
  ~CoordinatorStoreClient() override;

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;

 private:
  class Stub;
  CoordinatorStoreClient(std::string target, std::unique_ptr<Stub> stub);

  const std::string target_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace strata::parallel
