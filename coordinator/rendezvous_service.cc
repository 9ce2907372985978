#include "coordinator/rendezvous_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "coordinator/grpc_status.h"

namespace strata::coordinator {
namespace {

namespace wire = ::strata::worker::v1;

grpc::Status CheckKey(const std::string& key) {
  if (key.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "rendezvous store: empty key");
  }
  if (key.size() > RendezvousService::kMaxKeyBytes) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("rendezvous store: key of ", key.size(), " bytes exceeds the limit of ",
                     RendezvousService::kMaxKeyBytes, " bytes"));
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status RendezvousService::Set(grpc::ServerContext* context, const wire::SetRequest* request,
                                    wire::SetResponse* response) {
  if (grpc::Status s = CheckKey(request->key()); !s.ok()) return s;
  if (request->value().size() > kMaxValueBytes) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("rendezvous store: value of ", request->value().size(), " bytes for key '",
                     request->key(), "' exceeds the limit of ", kMaxValueBytes, " bytes (1 MiB)"));
  }
  return ToGrpcStatus(store_.Set(request->key(), request->value()));
}

grpc::Status RendezvousService::Get(grpc::ServerContext* context, const wire::GetRequest* request,
                                    wire::GetResponse* response) {
  if (grpc::Status s = CheckKey(request->key()); !s.ok()) return s;
  const absl::Duration wait = std::min(absl::Milliseconds(request->timeout_ms()), kMaxWait);
  const absl::Time deadline = absl::Now() + wait;
  while (true) {
    const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
    absl::StatusOr<std::string> value = store_.Get(request->key(), std::min(left, kCancelPoll));
    if (value.ok()) {
      response->set_value(std::move(*value));
      return grpc::Status::OK;
    }
    if (value.status().code() != absl::StatusCode::kDeadlineExceeded) {
      return ToGrpcStatus(value.status());
    }
    if (context->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          absl::StrCat("rendezvous store: Get '", request->key(), "' cancelled"));
    }
    if (absl::Now() >= deadline) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("rendezvous store: key '", request->key(),
                                       "' was not set within ", absl::FormatDuration(wait)));
    }
  }
}

}  // namespace strata::coordinator
