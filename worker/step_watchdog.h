// StepWatchdog: notices a step that runs far longer than any step should (a
// device call that never returns: a hung GPU, a collective no abort could
// end) and calls `on_overrun` once. The policy is the caller's: strata-worker
// (--max-step-s) exits so that its supervisor (Kubernetes, strata cluster up)
// restarts it; the coordinator has dropped the wedged worker already
// (--step-timeout-s), but a process stuck in the device keeps its GPU.
//
// Threads: one polling thread, owned; started by the constructor, joined by
// the destructor. `running_for` and `on_overrun` run on it.
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace strata {

struct StepWatchdogParams {
  // How long the current step has run; zero between steps.
  std::function<absl::Duration()> running_for;
  absl::Duration bound = absl::InfiniteDuration();
  // Called at most once, with how long the step had run.
  std::function<void(absl::Duration)> on_overrun;
};

class StepWatchdog {
 public:
  explicit StepWatchdog(StepWatchdogParams params);
  ~StepWatchdog();
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;

 private:
  void Loop();

  const StepWatchdogParams params_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace strata
