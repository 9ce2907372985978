// Who may use the coordinator's worker port (WorkerLink and RendezvousStore):
// "a worker proves it belongs by a join token" (--join-token-file), checked
// by every handler on that port before it reads a request.
//
// A worker sends the token as gRPC metadata x-strata-join-token on every
// call. Without a configured token the port is open (anything that reaches
// it may register as a worker; the coordinator warns at startup).
//
// This class is the one place that decides; a later mTLS identity check
// plugs in here (Check would accept a verified peer certificate as well).
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
