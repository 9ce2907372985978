// TerminationSignals: SIGTERM/SIGINT delivered to one watcher thread instead
// of a handler, so a process can react with ordinary code (log, take locks,
// make RPCs): the coordinator drains, a worker leaves its replica.
//
// Construct it first in main(), before any other thread exists: it blocks the
// signals in the calling thread, every later thread inherits that mask, and
// only the watcher's sigwait receives them.
//
// Threads: one watcher thread, owned here. The handler runs on it, under the
// object's lock, so SetHandler(nullptr) returns only after a running handler
// has finished: whatever the handler touches may be destroyed after that.
// SIGUSR1 is the watcher's private wake-up for destruction.
#ifndef STRATA_COMMON_TERMINATION_SIGNALS_H_
#define STRATA_COMMON_TERMINATION_SIGNALS_H_

#include <signal.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace strata {

class TerminationSignals {
 public:
  // name: "SIGTERM" or "SIGINT"; count: how many have arrived, this one included.
  using Handler = std::function<void(const std::string& name, int count)>;

  TerminationSignals();
  ~TerminationSignals();
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Blocks until the first signal; returns its name.
  std::string WaitForFirst();
  // How many have arrived so far.
  int count();
  // From now on `handler` runs on the watcher thread for each signal; if some
  // already arrived it runs at once (on the caller's thread) with the latest
  // one, so a signal that came before the handler existed is not lost.
  // nullptr detaches it, waiting for a running call to finish.
  void SetHandler(Handler handler);

 private:
  void Loop();

  sigset_t set_;
  std::thread thread_;
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_ ABSL_GUARDED_BY(mu_);
  std::string latest_ ABSL_GUARDED_BY(mu_);
  Handler handler_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata

#endif  // STRATA_COMMON_TERMINATION_SIGNALS_H_
