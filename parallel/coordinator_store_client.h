// KeyValueStore over the coordinator's RendezvousStore gRPC service
// (coordinator/rendezvous_service.h): how a worker's ranks meet their peers.
//
// Get waits server-side; a wait longer than the server's cap (60 s) is split
// into several calls, so the caller's timeout is honoured whatever it is.
// Errors are Statuses whose message starts with "rendezvous store at
// <target>: "; a key nobody set is DEADLINE_EXCEEDED naming the key.
//
// Credentials: every call carries the worker's join token (when it has one)
// and the current worker group's store token (set_store_token, from
// Registered.store_token) as metadata; the coordinator serves a group's keys
// only to its ranks.
//
// Threading: thread-safe (one gRPC channel, calls from any thread;
// set_store_token from any thread, applying to calls that start after it).
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "parallel/key_value_store.h"

namespace grpc {
class Channel;
class ChannelCredentials;
class ClientContext;
}  // namespace grpc

namespace strata::parallel {

class CoordinatorStoreClient : public KeyValueStore {
 public:
  // `target`: the coordinator's gRPC address ("host:port", "dns:///svc:port").
  // Connects lazily: an unreachable coordinator shows up in Set/Get.
  // `join_token`: sent on every call (empty: none).
  static absl::StatusOr<std::unique_ptr<CoordinatorStoreClient>> Create(std::string target,
                                                                        std::string join_token = "");
  // The same over a channel with `credentials` (TLS / mutual TLS to the
  // worker port; null: plaintext) and `server_name`, the name the
  // coordinator's certificate must carry when it differs from target's host.
  static absl::StatusOr<std::unique_ptr<CoordinatorStoreClient>> Create(
      std::string target, std::string join_token, std::shared_ptr<grpc::ChannelCredentials> credentials,
      const std::string& server_name);
  ~CoordinatorStoreClient() override;

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  // The worker group whose keys later calls use (Registered.store_token).
  void set_store_token(std::string token);

 private:
  class Stub;
  CoordinatorStoreClient(std::string target, std::string join_token, std::unique_ptr<Stub> stub);
  // A call's context: deadline and the two tokens.
  void Prepare(grpc::ClientContext* context, absl::Time deadline);

  const std::string target_;
  const std::string join_token_;
  std::unique_ptr<Stub> stub_;
  absl::Mutex mu_;
  std::string store_token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::parallel
