// strata-coordinator's configuration: command-line flags, optionally on top of
// a JSON file (--config FILE) whose keys are the flag names
// ({"model": "...", "replicas": 2, "max-queue": 64}); flags given on the
// command line win over the file.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/cluster.h"
#include "common/net/transport_security.h"
#include "coordinator/worker_connection.h"

namespace strata::coordinator {

struct CoordinatorOptions {
  ClusterConfig cluster;
  // Loopback unless --host says otherwise: a coordinator reachable from the
  // network is a decision (the Kubernetes manifests make it with --host 0.0.0.0).
  std::string host = "127.0.0.1";
  int32_t port = 8001;          // clients: KServe v2, strata.v1, health, reflection
  int32_t worker_port = 8003;   // workers: WorkerLink
  int32_t metrics_port = 8002;  // Prometheus /metrics over HTTP; 0 = off
  int32_t health_port = 0;      // grpc.health.v1 only, plaintext (probes); 0 = off
  WorkerLinkTimeouts worker_timeouts;  // --worker-liveness-s, --step-timeout-s
  // SIGTERM/SIGINT: how long in-flight requests may keep running before they
  // are cancelled (0: cancel at once). Keep it below the orchestrator's kill
  // deadline (Kubernetes terminationGracePeriodSeconds, 30 s by default).
  absl::Duration shutdown_grace = absl::Seconds(25);
  // Transport security (common/net/transport_security.h): the client port's
  // TLS (--tls-cert/--tls-key, client certificates with --tls-client-ca) and
  // the worker port's mutual TLS (--worker-tls-cert/-key/-ca). Listening on a
  // non-loopback --host in plaintext needs --plaintext (explicit).
  net::ServerSecurity client_security;
  net::ServerSecurity worker_security;
  bool plaintext = false;
  std::string port_file;        // when set, "port worker_port metrics_port" is written here once listening
  // --join-token-file: workers present its token (WorkerAdmission); empty:
  // the worker port is open. The model's expected fingerprint is
  // cluster.models[0].fingerprint (--model-fingerprint, default auto).
  std::string join_token_file;
  // Client port: gRPC receive limit and cap of every request field
  // (--max-request-bytes; coordinator/frontend/request_limits.h).
  int32_t max_request_bytes = 8 << 20;
  // --api-keys-file: clients need a key from it (frontend/api_key_auth.h);
  // empty: no client authentication.
  std::string api_keys_file;
  // --auth-health on: the client port's grpc.health.v1 needs a key too (the
  // --health-port server stays open for probes). Needs --api-keys-file.
  bool auth_health = false;
  // --metrics-auth on: /metrics needs HTTP Basic auth whose password is one of
  // the API keys (any user name). Needs --api-keys-file.
  bool metrics_auth = false;
};

// INVALID_ARGUMENT naming the flag or the config file's key.
absl::StatusOr<CoordinatorOptions> ParseCoordinatorFlags(const std::vector<std::string>& args);
std::string CoordinatorUsage();

}  // namespace strata::coordinator
