#include "worker/backend/collective_watch.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace strata {
namespace {

constexpr int kSpinsBeforeSleep = 64;

void Pause(int spins, absl::Duration poll) {
  if (spins < kSpinsBeforeSleep) {
    std::this_thread::yield();
  } else {
    absl::SleepFor(poll);
  }
}

// Waits for the stream after the communicators were aborted.
absl::Status DrainAfterAbort(const BoundedStreamWaitParams& p, const absl::Status& why) {
  const absl::Time deadline = absl::Now() + p.watch->drain_after_abort;
  for (int spins = 0;; ++spins) {
    absl::StatusOr<bool> done = p.done();
    if (!done.ok() || *done) return why;  // a stream error after abort says no more than `why`
    if (absl::Now() > deadline) {
      return absl::InternalError(absl::StrCat(
          p.what, ": still busy ", absl::FormatDuration(p.watch->drain_after_abort),
          " after aborting its communicators (", why.message(), "); the device is unusable"));
    }
    Pause(spins, p.poll);
  }
}

}  // namespace

absl::Status BoundedStreamWait(const BoundedStreamWaitParams& p) {
  const bool watched = p.watch != nullptr && p.watch->active();
  const absl::Time deadline = watched ? absl::Now() + p.watch->timeout : absl::InfiniteFuture();
  for (int spins = 0;; ++spins) {
    absl::StatusOr<bool> done = p.done();
    if (!done.ok()) return done.status();
    if (*done) return absl::OkStatus();
    if (watched) {
      if (absl::Status error = p.watch->check(); !error.ok()) {
        p.watch->abort_communicators(error);
        return DrainAfterAbort(p, error);
      }
      if (absl::Now() > deadline) {
        const absl::Status why = absl::DeadlineExceededError(
            absl::StrCat(p.what, ": work unfinished after ", absl::FormatDuration(p.watch->timeout),
                         " with collectives in it (a peer that died in a collective or never joined it; "
                         "--collective-timeout-s); communicators aborted"));
        p.watch->abort_communicators(why);
        return DrainAfterAbort(p, why);
      }
    }
    Pause(spins, p.poll);
  }
}

}  // namespace strata
