// Drains one RequestStream on the frontend call's thread: waits for chunks in
// short slices so that a client that cancelled the call, or a deadline that
// passed, is noticed between them and turned into RequestStream::Cancel().
//
//   PumpRequestStream ─► Next(poll_interval) ─► chunk ─► on_chunk(chunk)
//                          │ timeout: is_cancelled()? ─► Cancel(), CANCELLED
//                          │          past deadline?  ─► Cancel(), DEADLINE_EXCEEDED
//                          └ error ─► returned as is
//
// Thread ownership: runs entirely on the calling thread (the gRPC handler);
// is_cancelled and on_chunk are called there.
#pragma once

#include <functional>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/generation.h"
#include "coordinator/request_stream.h"

namespace strata::coordinator::frontend {

struct PumpOptions {
  // How long one Next() waits before the cancel and deadline checks run.
  absl::Duration poll_interval = absl::Milliseconds(25);
  absl::Time deadline = absl::InfiniteFuture();
  // True once the client is gone (grpc::ServerContext::IsCancelled). May be empty.
  std::function<bool()> is_cancelled;
};

// Calls on_chunk for every chunk until the last one (finish != kNone), then
// returns OK. An error from on_chunk (a failed write) cancels the stream and is
// returned; so are the stream's own errors. A cancelled client gives
// CANCELLED, a passed deadline DEADLINE_EXCEEDED; both cancel the stream.
absl::Status PumpRequestStream(RequestStream& stream, const PumpOptions& options,
                               absl::FunctionRef<absl::Status(const GenerationChunk&)> on_chunk);

}  // namespace strata::coordinator::frontend
