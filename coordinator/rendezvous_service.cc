#include "coordinator/rendezvous_service.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/join_token.h"
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

void RendezvousService::OpenGroup(const std::string& prefix, const std::string& token, int32_t ranks) {
  auto group = std::make_shared<Group>();
  group->prefix = prefix;
  group->token = token;
  group->ranks = std::max(1, ranks);
  parallel::InMemoryStoreLimits store_limits;
  store_limits.max_keys = limits_.max_keys_per_group;
  store_limits.max_total_bytes = limits_.max_bytes_per_group;
  group->store = std::make_shared<parallel::InMemoryStore>(store_limits);
  std::shared_ptr<Group> old;
  {
    absl::MutexLock lock(&mu_);
    auto& slot = groups_[prefix];
    old = std::move(slot);
    slot = std::move(group);
  }
  if (old) old->store->Close();
}

void RendezvousService::CloseGroup(const std::string& prefix) {
  std::shared_ptr<Group> old;
  {
    absl::MutexLock lock(&mu_);
    auto it = groups_.find(prefix);
    if (it == groups_.end()) return;
    old = std::move(it->second);
    groups_.erase(it);
  }
  old->store->Close();  // waiting Gets hold their own reference; they end now
}

size_t RendezvousService::size() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [prefix, g] : groups_) n += g->store->size();
  return n;
}

size_t RendezvousService::groups() const {
  absl::MutexLock lock(&mu_);
  return groups_.size();
}

absl::StatusOr<std::shared_ptr<RendezvousService::Group>> RendezvousService::Authorize(
    const grpc::ServerContext& context, const char* what, const std::string& key) const {
  if (admission_ != nullptr) {
    grpc::Status admitted = admission_->Check(context, what);
    if (!admitted.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(admitted.error_code()), admitted.error_message());
    }
  }
  const auto& md = context.client_metadata();
  auto it = md.find(kStoreTokenMetadata);
  if (it == md.end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        what, ": no group store token (metadata ", kStoreTokenMetadata,
        ", from Registered.store_token): only the ranks of a live worker group may use the store"));
  }
  const absl::string_view presented(it->second.data(), it->second.size());
  absl::MutexLock lock(&mu_);
  // Compared with every live group's token in constant time, rather than
  // looked up, so the time taken says nothing about how close a guess was.
  std::shared_ptr<Group> found;
  for (const auto& [prefix, g] : groups_) {
    if (ConstantTimeEquals(presented, g->token)) found = g;
  }
  if (found == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, ": the store token belongs to no live worker group (its group ended?)"));
  }
  if (!absl::StartsWith(key, found->prefix)) {
    return absl::PermissionDeniedError(absl::StrCat(what, ": key '", key, "' is outside this worker group's prefix '",
                                                    found->prefix, "'"));
  }
  return found;
}

absl::Status RendezvousService::Park(Group& group) {
  absl::MutexLock lock(&mu_);
  const int32_t per_group = limits_.parked_gets_per_rank * group.ranks;
  if (group.parked >= per_group) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous store: worker group ", group.prefix, " already has ",
                                                     group.parked, " Gets waiting (the limit is ", per_group,
                                                     " = ", limits_.parked_gets_per_rank, " per rank)"));
  }
  if (parked_ >= limits_.max_parked_gets) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous store: ", parked_,
                                                     " Gets are waiting (the limit over all groups is ",
                                                     limits_.max_parked_gets, ")"));
  }
  ++group.parked;
  ++parked_;
  return absl::OkStatus();
}

void RendezvousService::Unpark(Group& group) {
  absl::MutexLock lock(&mu_);
  --group.parked;
  --parked_;
}

grpc::Status RendezvousService::Set(grpc::ServerContext* context, const wire::SetRequest* request,
                                    wire::SetResponse* response) {
  if (grpc::Status s = CheckKey(request->key()); !s.ok()) return s;
  if (request->value().size() > kMaxValueBytes) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("rendezvous store: value of ", request->value().size(), " bytes for key '",
                     request->key(), "' exceeds the limit of ", kMaxValueBytes, " bytes (1 MiB)"));
  }
  absl::StatusOr<std::shared_ptr<Group>> group = Authorize(*context, "RendezvousStore.Set", request->key());
  if (!group.ok()) return ToGrpcStatus(group.status());
  return ToGrpcStatus((*group)->store->Set(request->key(), request->value()));
}

grpc::Status RendezvousService::Get(grpc::ServerContext* context, const wire::GetRequest* request,
                                    wire::GetResponse* response) {
  if (grpc::Status s = CheckKey(request->key()); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<Group>> found = Authorize(*context, "RendezvousStore.Get", request->key());
  if (!found.ok()) return ToGrpcStatus(found.status());
  Group& group = **found;
  // Already there: no wait, no parked slot.
  absl::StatusOr<std::string> value = group.store->Get(request->key(), absl::ZeroDuration());
  if (value.ok()) {
    response->set_value(std::move(*value));
    return grpc::Status::OK;
  }
  if (value.status().code() != absl::StatusCode::kDeadlineExceeded) return ToGrpcStatus(value.status());
  const absl::Duration wait = std::min(absl::Milliseconds(request->timeout_ms()), kMaxWait);
  if (wait <= absl::ZeroDuration()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("rendezvous store: key '", request->key(), "' is not set"));
  }
  if (absl::Status parked = Park(group); !parked.ok()) return ToGrpcStatus(parked);
  const absl::Time deadline = absl::Now() + wait;
  grpc::Status out;
  while (true) {
    const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
    value = group.store->Get(request->key(), std::min(left, kCancelPoll));
    if (value.ok()) {
      response->set_value(std::move(*value));
      out = grpc::Status::OK;
      break;
    }
    if (value.status().code() != absl::StatusCode::kDeadlineExceeded) {
      out = ToGrpcStatus(value.status());
      break;
    }
    if (context->IsCancelled()) {
      out = grpc::Status(grpc::StatusCode::CANCELLED,
                         absl::StrCat("rendezvous store: Get '", request->key(), "' cancelled"));
      break;
    }
    if (absl::Now() >= deadline) {
      out = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                         absl::StrCat("rendezvous store: key '", request->key(), "' was not set within ",
                                      absl::FormatDuration(wait)));
      break;
    }
  }
  Unpark(group);
  return out;
}

}  // namespace strata::coordinator
