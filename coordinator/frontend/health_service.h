// grpc.health.v1.Health, served by Strata instead of gRPC's built-in health
// service so that a call can be made to present an API key
// (--auth-health on; the built-in service runs without a handler of ours).
// It speaks the standard (grpc/health/v1/health.proto), so grpcio-health-
// checking, grpc_health_probe and Kubernetes' grpc probes see what they saw
// from the built-in one:
//
//   Check(service)  SERVING / NOT_SERVING for a known name; NOT_FOUND
//                   "service name unknown" for any other.
//   Watch(service)  the current status at once, then every change, until the
//                   client cancels (or its deadline passes) or Shutdown();
//                   an unknown name streams SERVICE_UNKNOWN and waits, as
//                   the standard says. Changes that come faster than the
//                   stream is written may be coalesced (the latest wins).
//
// Known names: "" (the whole server) and Options::services. All start
// NOT_SERVING; SetServing() switches every one of them.
//
// API keys: with Options::api_keys set, Check and Watch first require a key
// exactly like the other client RPCs (ApiKeys::Check: UNAUTHENTICATED,
// same messages); null = open (the --health-port server, kubelet probes).
//
// Watch bound: each open Watch holds one of the synchronous server's
// threads, so at most Options::max_watches (kMaxWatches = 64 by default) are
// open at once per service object; one more gets RESOURCE_EXHAUSTED. An open
// Watch wakes at every change and every Options::watch_poll (100 ms) to see
// whether its client cancelled.
//
// Shutdown(): every status becomes NOT_SERVING for good (later SetServing
// calls are ignored, as gRPC's built-in service does once its server shuts
// down), every open Watch sends NOT_SERVING and ends with UNAVAILABLE, new
// Watches are refused with UNAVAILABLE. Call it before grpc::Server::Shutdown
// so that open Watches never hold the server's shutdown.
//
// Thread ownership: every method may be called from any thread; the state is
// guarded by mu_, Watch handlers wait on changed_ (never while writing).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/frontend/api_key_auth.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace strata::coordinator::frontend {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  static constexpr int32_t kMaxWatches = 64;

  struct Options {
    // Service names known besides "" (e.g. "inference.GRPCInferenceService").
    std::vector<std::string> services;
    ApiKeys* api_keys = nullptr;  // not owned; null: no key needed
    int32_t max_watches = kMaxWatches;
    absl::Duration watch_poll = absl::Milliseconds(100);
  };

  explicit HealthService(Options options);

  // Every known name SERVING or NOT_SERVING; wakes the Watches. Ignored after
  // Shutdown().
  void SetServing(bool serving);
  // See the header comment. Idempotent.
  void Shutdown();

  // Watch streams open now (tests, logs).
  int32_t open_watches() const;

  grpc::Status Check(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  grpc::Status Authenticate(const grpc::ServerContext& context) const;
  // The status of `service`: SERVICE_UNKNOWN for a name that is not known.
  ServingStatus Lookup(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;  // signalled on every SetServing/Shutdown
  std::map<std::string, ServingStatus> statuses_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  int32_t watches_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::coordinator::frontend
