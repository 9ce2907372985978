#include "worker/backend/collective_watch.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace strata {
namespace {

// A step's wait is on the token-to-token path: like cudaStreamSynchronize's
// default (spin while the host has a core per GPU), it yields in a loop at
// first, and only a wait longer than kSpinFor sleeps `poll` between looks.
constexpr absl::Duration kSpinFor = absl::Milliseconds(20);

void Pause(absl::Duration waited, absl::Duration poll) {
  if (waited < kSpinFor) {
    std::this_thread::yield();
  } else {
    absl::SleepFor(poll);
  }
}

// Waits for the stream after the communicators were aborted.
absl::Status DrainAfterAbort(const BoundedStreamWaitParams& p, const absl::Status& why) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + p.watch->drain_after_abort;
  for (;;) {
    absl::StatusOr<bool> done = p.done();
    if (!done.ok() || *done) return why;  // a stream error after abort says no more than `why`
    const absl::Time now = absl::Now();
    if (now > deadline) {
      return absl::InternalError(absl::StrCat(
          p.what, ": still busy ", absl::FormatDuration(p.watch->drain_after_abort),
          " after aborting its communicators (", why.message(), "); the device is unusable"));
    }
    Pause(now - start, p.poll);
  }
}

}  // namespace

absl::Status BoundedStreamWait(const BoundedStreamWaitParams& p) {
  const bool watched = p.watch != nullptr && p.watch->active();
  const absl::Time start = absl::Now();
  const absl::Time deadline = watched ? start + p.watch->timeout : absl::InfiniteFuture();
  absl::Time next_check = start;
  for (;;) {
    absl::StatusOr<bool> done = p.done();
    if (!done.ok()) return done.status();
    if (*done) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (watched && now >= next_check) {
      next_check = now + p.check_every;
      if (absl::Status error = p.watch->check(); !error.ok()) {
        p.watch->abort_communicators(error);
        return DrainAfterAbort(p, error);
      }
      if (now > deadline) {
        const absl::Status why = absl::DeadlineExceededError(
            absl::StrCat(p.what, ": work unfinished after ", absl::FormatDuration(p.watch->timeout),
                         " with collectives in it (a peer that died in a collective or never joined it; "
                         "--collective-timeout-s); communicators aborted"));
        p.watch->abort_communicators(why);
        return DrainAfterAbort(p, why);
      }
    }
    Pause(now - start, p.poll);
  }
}

}  // namespace strata
