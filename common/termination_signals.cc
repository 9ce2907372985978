#include "common/termination_signals.h"

#include <pthread.h>

#include <utility>

namespace strata {

TerminationSignals::TerminationSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] { Loop(); });
}

TerminationSignals::~TerminationSignals() {
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

std::string TerminationSignals::WaitForFirst() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* n) { return *n > 0; }, &count_));
  return first_;
}

int TerminationSignals::count() {
  absl::MutexLock lock(&mu_);
  return count_;
}

void TerminationSignals::SetHandler(Handler handler) {
  absl::MutexLock lock(&mu_);
  handler_ = std::move(handler);
  if (handler_ && count_ > 0) handler_(latest_, count_);
}

void TerminationSignals::Loop() {
  for (;;) {
    int sig = 0;
    if (sigwait(&set_, &sig) != 0) continue;
    if (sig == SIGUSR1) return;
    absl::MutexLock lock(&mu_);
    latest_ = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (++count_ == 1) first_ = latest_;
    if (handler_) handler_(latest_, count_);
  }
}

}  // namespace strata
