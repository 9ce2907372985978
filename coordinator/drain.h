// Graceful shutdown of the coordinator's requests (SIGTERM/SIGINT):
//
//   Run():  cluster.StopAdmitting()       new requests: UNAVAILABLE "shutting down";
//           │                             health/readiness false
//           ▼
//           wait while outstanding() > 0  in-flight requests keep generating;
//           │  (progress logged)          progress logged every progress_interval
//           ▼ grace over, or CutShort()
//           cluster.CancelAll(UNAVAILABLE "the server is shutting down; request
//           │  cancelled after the N s grace period")   blocks freed by the loops
//           ▼
//           wait up to cancel_wait for the loops to end them ─► DrainReport
//
// What happens after (Cluster::Shutdown telling the workers, stopping the
// servers) is the caller's: strata-coordinator's main.
//
// Thread ownership: Run() on one thread (the process's main thread), once;
// CutShort() from any thread (a second signal's watcher), before, during or
// after Run().
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/cluster.h"

namespace strata::coordinator {

struct DrainOptions {
  // How long in-flight requests may keep running; zero: cancel them at once.
  absl::Duration grace = absl::Seconds(25);
  // After cancelling, how long to wait for the engine loops to end the
  // requests (each ends them after the step it is awaiting).
  absl::Duration cancel_wait = absl::Seconds(5);
  // How often the remaining count is logged while waiting.
  absl::Duration progress_interval = absl::Seconds(1);
  // Where progress lines go (without a trailing newline); empty: nowhere.
  std::function<void(const std::string&)> log;
};

struct DrainReport {
  int32_t in_flight_at_start = 0;  // admitted and running when the drain began
  int32_t cancelled = 0;           // still running when the grace period ended (or was cut short)
  int32_t left_after_cancel = 0;   // not ended cancel_wait after the cancel (0 unless a loop is stuck)
  bool cut_short = false;          // CutShort() ended the grace period early
  int32_t kv_blocks_used = 0;      // KV blocks still held when Run returned (0 after a clean drain)
  absl::Duration elapsed;
};

class Drain {
 public:
  // `cluster` must outlive the Drain.
  Drain(Cluster* cluster, DrainOptions options);
  Drain(const Drain&) = delete;
  Drain& operator=(const Drain&) = delete;

  // Blocks for at most grace + cancel_wait (plus one poll).
  DrainReport Run();
  // Ends the grace period now: Run cancels whatever still runs. Idempotent.
  void CutShort();

  // The status requests still running at the end of the grace period get.
  static absl::Status CancelStatus(absl::Duration grace, bool cut_short);

 private:
  void Log(const std::string& line) const;
  bool CutShortOrNone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Cluster* const cluster_;
  const DrainOptions options_;

  mutable absl::Mutex mu_;
  bool cut_short_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace strata::coordinator
