#include "coordinator/worker_link_service.h"

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "coordinator/grpc_status.h"
#include "coordinator/worker_connection.h"

namespace strata::coordinator {

grpc::Status WorkerLinkService::Attach(grpc::ServerContext* context,
                                       grpc::ServerReaderWriter<wire::CoordinatorMessage, wire::WorkerMessage>* stream) {
  if (admission_ != nullptr) {
    grpc::Status admitted = admission_->Check(*context, "WorkerLink.Attach");
    if (!admitted.ok()) {
      std::fprintf(stderr, "[coordinator] refused a worker from %s: %s\n", context->peer().c_str(),
                   admitted.error_message().c_str());
      return admitted;
    }
  }
  wire::WorkerMessage first;
  if (!stream->Read(&first)) return grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before Register");
  if (!first.has_register_()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the first message must be Register");
  }
  const wire::Register& reg = first.register_();
  absl::StatusOr<Replica*> replica = cluster_->ReplicaFor(reg);
  if (!replica.ok()) {
    std::fprintf(stderr, "[coordinator] rejected worker from %s: %s\n", context->peer().c_str(),
                 std::string(replica.status().message()).c_str());
    return ToGrpcStatus(replica.status());
  }
  const std::string worker_id = absl::StrCat("r", reg.replica(), "-w", next_worker_++);
  auto conn = std::make_shared<WorkerConnection>(context, stream, reg, worker_id, timeouts_);
  // Registered follows once every rank of the replica's group has attached.
  absl::Status attached = (*replica)->Attach(conn);
  if (!attached.ok()) {
    std::fprintf(stderr, "[coordinator] rejected worker %s: %s\n", worker_id.c_str(),
                 std::string(attached.message()).c_str());
    return ToGrpcStatus(attached);
  }
  std::fprintf(stderr,
               "[coordinator] worker %s attached: replica %u (tp %u/%u, pp %u/%u), %s, %u KV blocks of %u tokens, "
               "model %s\n",
               worker_id.c_str(), reg.replica(), reg.tp_rank(), reg.tp_size(), reg.pp_stage(), reg.pp_size(),
               reg.device().c_str(), reg.kv_capacity_blocks(), reg.block_size(), reg.model().name().c_str());
  (*replica)->Wake();
  absl::Status ended = conn->ReadLoop();
  if (conn->left()) {
    // Detach first: the replica is not ready from here on and its requests
    // move or fail; then the worker hears it may go.
    conn->Close();
    (*replica)->Detach(conn.get());
    std::fprintf(stderr, "[coordinator] %s; replica %u is not ready until its group is complete again\n",
                 std::string(ended.message()).c_str(), reg.replica());
    conn->AcknowledgeLeave(absl::StrCat("left replica ", reg.replica()));
    return grpc::Status::OK;
  }
  conn->Close();
  (*replica)->Detach(conn.get());
  std::fprintf(stderr, "[coordinator] worker %s detached: %s\n", worker_id.c_str(),
               std::string(ended.message()).c_str());
  // A protocol violation is the worker's to hear about.
  if (absl::IsInvalidArgument(ended)) return ToGrpcStatus(ended);
  return grpc::Status::OK;
}

}  // namespace strata::coordinator
