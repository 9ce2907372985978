// The coordinator's WorkerLink service: workers dial in, Register, and keep
// their Attach stream open; each stream is one WorkerConnection handed to the
// replica it registered for.
//
// Before anything is read the call must pass the WorkerAdmission (join
// token); then the Register is checked (Cluster::ReplicaFor) before any of
// its fields are used. A refusal ends the call with the status and one log
// line naming the peer; a worker that later breaks the protocol ends with
// INVALID_ARGUMENT naming the violation.
//
// Thread ownership: each Attach call runs on its own gRPC thread for the
// lifetime of the worker's stream.
#pragma once

#include <atomic>

#include "coordinator/cluster.h"
#include "coordinator/worker_admission.h"
#include "coordinator/worker_connection.h"
#include "grpcpp/grpcpp.h"
#include "strata/v1/worker.grpc.pb.h"

namespace strata::coordinator {

class WorkerLinkService final : public ::strata::worker::v1::WorkerLink::Service {
 public:
  // `cluster` and `admission` (null: open) must outlive the service.
  WorkerLinkService(Cluster* cluster, WorkerLinkTimeouts timeouts, const WorkerAdmission* admission = nullptr)
      : cluster_(cluster), timeouts_(timeouts), admission_(admission) {}

  grpc::Status Attach(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<::strata::worker::v1::CoordinatorMessage,
                                               ::strata::worker::v1::WorkerMessage>* stream) override;

 private:
  Cluster* const cluster_;
  const WorkerLinkTimeouts timeouts_;
  const WorkerAdmission* const admission_;
  std::atomic<int64_t> next_worker_{1};
};

}  // namespace strata::coordinator
