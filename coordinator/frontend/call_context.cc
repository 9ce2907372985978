#include "coordinator/frontend/call_context.h"

#include <chrono>

#include "absl/time/clock.h"

namespace strata::coordinator::frontend {

absl::Time CallDeadline(const grpc::ServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  // gRPC reports "no deadline" as a time far in the future (time_point::max()
  // or thereabouts); treat anything beyond a year as none.
  if (deadline >= std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

std::function<absl::Status()> CallCheck(grpc::ServerContext* context, absl::Time deadline) {
  return [context, deadline]() -> absl::Status {
    if (context->IsCancelled()) return absl::CancelledError("the client cancelled the call during tokenizing");
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("the call's deadline passed during tokenizing");
    return absl::OkStatus();
  };
}

PumpOptions PumpOptionsFor(grpc::ServerContext* context, absl::Duration poll_interval,
                           absl::Time deadline) {
  PumpOptions options;
  options.poll_interval = poll_interval;
  options.deadline = deadline;
  options.is_cancelled = [context] { return context->IsCancelled(); };
  return options;
}

}  // namespace strata::coordinator::frontend
