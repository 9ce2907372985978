// What a generation takes from the gRPC call that asked for it: the call's
// deadline, and "has the client gone away" for PumpRequestStream.
//
// Thread ownership: stateless; the ServerContext must outlive what uses it.
#pragma once

#include <grpcpp/server_context.h>

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/frontend/request_pump.h"

namespace strata::coordinator::frontend {

// The client's deadline, or InfiniteFuture when it set none.
absl::Time CallDeadline(const grpc::ServerContext& context);

// Pump options that poll context->IsCancelled() every poll_interval and stop
// at `deadline`.
// For work done before a generation exists (tokenizing the prompt): CANCELLED
// once the client cancelled the call, DEADLINE_EXCEEDED once `deadline` passed.
std::function<absl::Status()> CallCheck(grpc::ServerContext* context, absl::Time deadline);

PumpOptions PumpOptionsFor(grpc::ServerContext* context, absl::Duration poll_interval,
                           absl::Time deadline);

}  // namespace strata::coordinator::frontend
