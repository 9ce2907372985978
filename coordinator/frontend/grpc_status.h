// absl::Status -> grpc::Status. Both use the canonical code numbers
// (google.rpc.Code), so the code is copied as is and the message kept. Every
// RPC handler of the frontends returns its result through this one function.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace strata::coordinator {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace strata::coordinator
