#include "coordinator/frontend/request_pump.h"

#include <optional>

namespace strata::coordinator::frontend {

absl::Status PumpRequestStream(RequestStream& stream, const PumpOptions& options,
                               absl::FunctionRef<absl::Status(const GenerationChunk&)> on_chunk) {
  // gRPC cancels a call when its deadline passes, so a cancellation seen at
  // the deadline (within this slack, for the two clocks) is the deadline's:
  // it ends, and is counted, as DEADLINE_EXCEEDED.
  constexpr absl::Duration kDeadlineSlack = absl::Milliseconds(50);
  while (true) {
    const bool cancelled = options.is_cancelled && options.is_cancelled();
    const absl::Time now = absl::Now();
    if (now >= options.deadline || (cancelled && now >= options.deadline - kDeadlineSlack)) {
      absl::Status late = absl::DeadlineExceededError("the call's deadline passed before generation finished");
      stream.Cancel(late);
      return late;
    }
    if (cancelled) {
      stream.Cancel();
      return absl::CancelledError("the client cancelled the call");
    }
    absl::StatusOr<std::optional<GenerationChunk>> next = stream.Next(options.poll_interval);
    if (!next.ok()) return next.status();
    if (!next->has_value()) continue;  // timed out: check cancel and deadline again
    const GenerationChunk& chunk = **next;
    if (absl::Status s = on_chunk(chunk); !s.ok()) {
      stream.Cancel();
      return s;
    }
    if (chunk.finish != FinishReason::kNone) return absl::OkStatus();
  }
}

}  // namespace strata::coordinator::frontend
