#include "coordinator/frontend/health_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/grpc_status.h"

namespace strata::coordinator::frontend {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthService::HealthService(Options options) : options_(std::move(options)) {
  absl::MutexLock lock(&mu_);
  statuses_[""] = HealthCheckResponse::NOT_SERVING;
  for (const std::string& name : options_.services) statuses_[name] = HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  for (auto& [name, status] : statuses_) {
    status = serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  }
  changed_.SignalAll();
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
  changed_.SignalAll();
}

int32_t HealthService::open_watches() const {
  absl::MutexLock lock(&mu_);
  return watches_;
}

grpc::Status HealthService::Authenticate(const grpc::ServerContext& context) const {
  if (options_.api_keys == nullptr) return grpc::Status::OK;
  return ToGrpcStatus(options_.api_keys->Check(context));
}

HealthService::ServingStatus HealthService::Lookup(const std::string& service) const {
  auto it = statuses_.find(service);
  return it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
}

grpc::Status HealthService::Check(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  if (grpc::Status auth = Authenticate(*context); !auth.ok()) return auth;
  absl::MutexLock lock(&mu_);
  const ServingStatus status = Lookup(request->service());
  // gRPC's built-in service answers the same.
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) return {grpc::StatusCode::NOT_FOUND, "service name unknown"};
  response->set_status(status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  if (grpc::Status auth = Authenticate(*context); !auth.ok()) return auth;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return {grpc::StatusCode::UNAVAILABLE, "the server is shutting down"};
    if (watches_ >= options_.max_watches) {
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              absl::StrCat("too many health Watch streams open (", watches_,
                           ", the limit); use Check or retry later")};
    }
    ++watches_;
  }
  struct Release {
    HealthService* self;
    ~Release() {
      absl::MutexLock lock(&self->mu_);
      --self->watches_;
    }
  } release{this};

  const std::string& service = request->service();
  bool sent = false;
  ServingStatus last = HealthCheckResponse::UNKNOWN;
  while (true) {
    ServingStatus current;
    bool closing;
    {
      absl::MutexLock lock(&mu_);
      // Sleep until something changed; wake every watch_poll to notice a
      // cancelled client (gRPC has no wake-up for a sync handler).
      while (sent && !shut_down_ && Lookup(service) == last && !context->IsCancelled()) {
        changed_.WaitWithTimeout(&mu_, options_.watch_poll);
      }
      current = Lookup(service);
      closing = shut_down_;
    }
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    if (!sent || current != last) {
      HealthCheckResponse response;
      response.set_status(current);
      if (!writer->Write(response)) return grpc::Status::CANCELLED;  // the client is gone
      sent = true;
      last = current;
    }
    if (closing) return {grpc::StatusCode::UNAVAILABLE, "the server is shutting down"};
  }
}

}  // namespace strata::coordinator::frontend
