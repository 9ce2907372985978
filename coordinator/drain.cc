#include "coordinator/drain.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace strata::coordinator {

namespace {

// How often the outstanding count is polled while waiting.
constexpr absl::Duration kPoll = absl::Milliseconds(20);

std::string Requests(int32_t n) { return absl::StrCat(n, n == 1 ? " request" : " requests"); }

std::string Seconds(absl::Duration d) {
  const int64_t whole = absl::ToInt64Seconds(d);
  if (absl::Seconds(whole) == d) return absl::StrCat(whole, " s");
  return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(d));
}

}  // namespace

Drain::Drain(Cluster* cluster, DrainOptions options) : cluster_(cluster), options_(std::move(options)) {}

void Drain::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

void Drain::CutShort() {
  absl::MutexLock lock(&mu_);
  cut_short_ = true;
}

bool Drain::CutShortOrNone() const { return cut_short_; }

absl::Status Drain::CancelStatus(absl::Duration grace, bool cut_short) {
  if (cut_short) {
    return absl::UnavailableError(absl::StrCat("the server is shutting down; request cancelled by a forced shutdown "
                                               "(second signal) before the ",
                                               Seconds(grace), " grace period ended"));
  }
  return absl::UnavailableError(
      absl::StrCat("the server is shutting down; request cancelled after the ", Seconds(grace), " grace period"));
}

DrainReport Drain::Run() {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + std::max(options_.grace, absl::ZeroDuration());
  DrainReport report;
  cluster_->StopAdmitting();
  report.in_flight_at_start = cluster_->outstanding();
  Log(absl::StrCat("draining: no new requests; ", Requests(report.in_flight_at_start), " in flight get up to ",
                   Seconds(options_.grace), " to finish"));

  // Phase 1: let in-flight requests finish, until the grace period ends or
  // CutShort().
  absl::Time next_log = start + options_.progress_interval;
  int32_t remaining = report.in_flight_at_start;
  while (remaining > 0) {
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &Drain::CutShortOrNone), std::min(kPoll, deadline - now));
      if (cut_short_) {
        report.cut_short = true;
        break;
      }
    }
    remaining = cluster_->outstanding();
    const absl::Duration left = deadline - absl::Now();
    if (remaining > 0 && absl::Now() >= next_log && left >= absl::Milliseconds(50)) {
      Log(absl::StrFormat("draining: %s still running, %.1f s of the grace period left", Requests(remaining),
                          absl::ToDoubleSeconds(left)));
      next_log += options_.progress_interval;
    }
  }
  remaining = cluster_->outstanding();
  if (remaining == 0) {
    Log(absl::StrFormat("draining: all %s in flight ended after %.1f s", Requests(report.in_flight_at_start),
                        absl::ToDoubleSeconds(absl::Now() - start)));
  } else {
    // Phase 2: cancel what is left; the engine loops end the requests with
    // this status and free their blocks.
    report.cancelled = remaining;
    Log(absl::StrCat(report.cut_short ? "draining cut short" : "grace period over", ": cancelling ",
                     Requests(remaining), " still running"));
    cluster_->CancelAll(CancelStatus(options_.grace, report.cut_short));
    const absl::Time cancel_deadline = absl::Now() + options_.cancel_wait;
    while ((remaining = cluster_->outstanding()) > 0 && absl::Now() < cancel_deadline) absl::SleepFor(kPoll);
    report.left_after_cancel = remaining;
    if (remaining > 0) {
      Log(absl::StrCat("draining: ", Requests(remaining), " did not end within ", Seconds(options_.cancel_wait),
                       " of the cancel; shutting down anyway"));
    }
  }
  // The loops publish their block counts once per iteration: give them one
  // to reflect the last requests' release.
  const absl::Time settle = absl::Now() + absl::Milliseconds(200);
  while ((report.kv_blocks_used = cluster_->kv_blocks_used()) > 0 && absl::Now() < settle) absl::SleepFor(kPoll);
  report.elapsed = absl::Now() - start;
  return report;
}

}  // namespace strata::coordinator
