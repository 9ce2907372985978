// The coordinator's WorkerLink service: workers dial in, Register, and keep
// their Attach stream open; each stream is one WorkerConnection handed to the
// replica it registered for.
//
// Thread ownership: each Attach call runs on its own gRPC thread for the
// lifetime of the worker's stream.
#pragma once

#include <atomic>

#include "coordinator/cluster.h"
#include "coordinator/worker_connection.h"
#include "grpcpp/grpcpp.h"
#include "strata/v1/worker.grpc.pb.h"

namespace strata::coordinator {

class WorkerLinkService final : public ::strata::worker::v1::WorkerLink::Service {
 public:
  // `cluster` must outlive the service.
  WorkerLinkService(Cluster* cluster, WorkerLinkTimeouts timeouts) : cluster_(cluster), timeouts_(timeouts) {}

  grpc::Status Attach(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<::strata::worker::v1::CoordinatorMessage,
                                               ::strata::worker::v1::WorkerMessage>* stream) override;

 private:
  Cluster* const cluster_;
  const WorkerLinkTimeouts timeouts_;
  std::atomic<int64_t> next_worker_{1};
};

}  // namespace strata::coordinator
