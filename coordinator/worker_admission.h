// Who may use the coordinator's worker port (WorkerLink and RendezvousStore):
// "a worker proves it belongs by a join token" (--join-token-file), checked
// by every handler on that port before it reads a request.
//
// A worker sends the token as gRPC metadata x-strata-join-token on every
// call. Without a configured token the port is open (anything that reaches
// it may register as a worker; the coordinator warns at startup).
//
// The other proof, a client certificate from the worker CA (mutual TLS,
// --worker-tls-*), is enforced before any handler runs: the worker port's
// credentials require and verify it in the TLS handshake
// (common/net/transport_security.h), so a call that reaches Check under
// mutual TLS already came from an admitted worker. Both can be combined.
//
// Threading: immutable after construction; Check from any gRPC thread.
#pragma once

#include <string>

#include "grpcpp/grpcpp.h"

namespace strata::coordinator {

class WorkerAdmission {
 public:
  // Admits every caller.
  static WorkerAdmission Open() { return WorkerAdmission(""); }
  // Admits callers that present `token` (non-empty; the caller validated its
  // length with ReadJoinTokenFile).
  static WorkerAdmission WithJoinToken(std::string token) { return WorkerAdmission(std::move(token)); }

  bool authenticated() const { return !token_.empty(); }

  // OK when admitted; UNAUTHENTICATED when the call carries no join token,
  // PERMISSION_DENIED when it carries a wrong one. The messages never echo a
  // token. `what` names the call for the message ("WorkerLink.Attach").
  grpc::Status Check(const grpc::ServerContext& context, const char* what) const;

 private:
  explicit WorkerAdmission(std::string token) : token_(std::move(token)) {}

  std::string token_;  // empty: open
};

}  // namespace strata::coordinator
