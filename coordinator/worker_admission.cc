#include "coordinator/worker_admission.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/join_token.h"

namespace strata::coordinator {

grpc::Status WorkerAdmission::Check(const grpc::ServerContext& context, const char* what) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& md = context.client_metadata();
  auto it = md.find(kJoinTokenMetadata);
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(what, ": this coordinator's worker port requires a join token (metadata ",
                                     kJoinTokenMetadata, "; strata-worker --join-token-file FILE)"));
  }
  const absl::string_view presented(it->second.data(), it->second.size());
  if (!ConstantTimeEquals(presented, token_)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat(what, ": the join token is wrong (it does not match the coordinator's "
                                           "--join-token-file)"));
  }
  return grpc::Status::OK;
}

}  // namespace strata::coordinator
