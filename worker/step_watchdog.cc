#include "worker/step_watchdog.h"

#include <algorithm>
#include <utility>

namespace strata {

StepWatchdog::StepWatchdog(StepWatchdogParams params) : params_(std::move(params)) {
  thread_ = std::thread([this] { Loop(); });
}

StepWatchdog::~StepWatchdog() {
  stop_.Notify();
  thread_.join();
}

void StepWatchdog::Loop() {
  // A quarter of the bound between looks (so an overrun is noticed within
  // 1.25 x bound), at least 10 ms and at most 1 s.
  const absl::Duration poll = std::clamp(params_.bound / 4, absl::Milliseconds(10), absl::Seconds(1));
  while (!stop_.WaitForNotificationWithTimeout(poll)) {
    const absl::Duration ran = params_.running_for();
    if (ran > params_.bound) {
      params_.on_overrun(ran);
      return;
    }
  }
}

}  // namespace strata
