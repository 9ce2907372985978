#include "parallel/coordinator_store_client.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/join_token.h"
#include "grpcpp/grpcpp.h"
#include "strata/v1/rendezvous.grpc.pb.h"

namespace strata::parallel {
namespace {

namespace wire = ::strata::worker::v1;

// The server waits at most this long per Get (RendezvousService::kMaxWait).
constexpr absl::Duration kServerMaxWait = absl::Seconds(60);
// Extra client-side deadline on top of the server-side wait, for the network.
constexpr absl::Duration kRpcGrace = absl::Seconds(5);
// Deadline of a Set.
constexpr absl::Duration kSetTimeout = absl::Seconds(30);

}  // namespace

class CoordinatorStoreClient::Stub {
 public:
  explicit Stub(std::shared_ptr<grpc::Channel> channel)
      : stub(wire::RendezvousStore::NewStub(std::move(channel))) {}
  std::unique_ptr<wire::RendezvousStore::Stub> stub;
};

absl::StatusOr<std::unique_ptr<CoordinatorStoreClient>> CoordinatorStoreClient::Create(
    std::string target, std::string join_token) {
  return Create(std::move(target), std::move(join_token), nullptr, "");
}

absl::StatusOr<std::unique_ptr<CoordinatorStoreClient>> CoordinatorStoreClient::Create(
    std::string target, std::string join_token, std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& server_name) {
  if (target.empty()) {
    return absl::InvalidArgumentError("rendezvous store: empty coordinator address");
  }
  grpc::ChannelArguments args;
  if (credentials != nullptr && !server_name.empty()) args.SetSslTargetNameOverride(server_name);
  auto channel = grpc::CreateCustomChannel(
      target, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous store at ", target, ": cannot create a channel"));
  }
  auto stub = std::make_unique<Stub>(std::move(channel));
  return std::unique_ptr<CoordinatorStoreClient>(
      new CoordinatorStoreClient(std::move(target), std::move(join_token), std::move(stub)));
}

CoordinatorStoreClient::CoordinatorStoreClient(std::string target, std::string join_token,
                                               std::unique_ptr<Stub> stub)
    : target_(std::move(target)), join_token_(std::move(join_token)), stub_(std::move(stub)) {}

void CoordinatorStoreClient::set_store_token(std::string token) {
  absl::MutexLock lock(&mu_);
  store_token_ = std::move(token);
}

void CoordinatorStoreClient::Prepare(grpc::ClientContext* context, absl::Time deadline) {
  context->set_deadline(absl::ToChronoTime(deadline));
  if (!join_token_.empty()) context->AddMetadata(kJoinTokenMetadata, join_token_);
  absl::MutexLock lock(&mu_);
  if (!store_token_.empty()) context->AddMetadata(kStoreTokenMetadata, store_token_);
}

CoordinatorStoreClient::~CoordinatorStoreClient() = default;

absl::Status CoordinatorStoreClient::Set(const std::string& key, const std::string& value) {
  wire::SetRequest request;
  request.set_key(key);
  request.set_value(value);
  wire::SetResponse response;
  grpc::ClientContext context;
  Prepare(&context, absl::Now() + kSetTimeout);
  grpc::Status s = stub_->stub->Set(&context, request, &response);
  if (s.ok()) return absl::OkStatus();
  return absl::Status(
      static_cast<absl::StatusCode>(s.error_code()),
      absl::StrCat("rendezvous store at ", target_, ": Set '", key, "': ", s.error_message()));
}

absl::StatusOr<std::string> CoordinatorStoreClient::Get(const std::string& key,
                                                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + std::max(timeout, absl::ZeroDuration());
  while (true) {
    const absl::Duration wait =
        std::min(std::max(deadline - absl::Now(), absl::ZeroDuration()), kServerMaxWait);
    wire::GetRequest request;
    request.set_key(key);
    request.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(wait)));
    wire::GetResponse response;
    grpc::ClientContext context;
    Prepare(&context, absl::Now() + wait + kRpcGrace);
    grpc::Status s = stub_->stub->Get(&context, request, &response);
    if (s.ok()) return std::move(*response.mutable_value());
    // The server's wait ran out: ask again while the caller's timeout lasts.
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && absl::Now() < deadline) continue;
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return absl::DeadlineExceededError(absl::StrCat("rendezvous store at ", target_, ": key '",
                                                      key, "' was not set within ",
                                                      absl::FormatDuration(timeout)));
    }
    return absl::Status(
        static_cast<absl::StatusCode>(s.error_code()),
        absl::StrCat("rendezvous store at ", target_, ": Get '", key, "': ", s.error_message()));
  }
}

}  // namespace strata::parallel
