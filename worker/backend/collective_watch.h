// CollectiveWatch: how a device backend keeps a wait on its stream bounded
// when communicator work (NCCL kernels of the TP all-reduce, PP send/recv) is
// in that stream. Such a kernel waits for its peers; a peer that died or never
// joins leaves it spinning, and cudaStreamSynchronize would never return
// (the worker hangs, holding its GPU, invisible to Kubernetes). This is the
// watchdog PyTorch's ProcessGroupNCCL and vLLM rely on: poll the stream,
// check the communicators for asynchronous errors, and after a deadline abort
// them, which ends their kernels so the stream drains and the step fails with
// a Status instead of hanging.
//
// BoundedStreamWait is the loop, in plain C++ so its decisions are unit-tested
// on the host with fake callables; DeviceKernelOps supplies cudaStreamQuery.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strata {

struct CollectiveWatch {
  // An error the communicators reported asynchronously (a peer gone, a
  // network failure), OK while healthy. Called on the waiting thread.
  std::function<absl::Status()> check;
  // Aborts every communicator whose work may be in the stream, with `why`:
  // their kernels return, and later ops on them fail naming it.
  std::function<void(const absl::Status& why)> abort_communicators;
  // How long a wait may take before the communicators are aborted
  // (--collective-timeout-s).
  absl::Duration timeout = absl::InfiniteDuration();
  // After abort_communicators, how long the stream may take to drain before the wait gives
  // up (the device is then unusable; the worker must exit).
  absl::Duration drain_after_abort = absl::Seconds(10);

  bool active() const { return static_cast<bool>(check) && static_cast<bool>(abort_communicators); }
};

struct BoundedStreamWaitParams {
  // true once the stream's work is finished; an error for a failed stream
  // (a CUDA error: returned as is, nothing aborted).
  std::function<absl::StatusOr<bool>()> done;
  const CollectiveWatch* watch = nullptr;  // inactive or null: wait without a bound
  std::string what;                         // "cuda:0 stream", starts every message
  absl::Duration poll = absl::Microseconds(50);  // sleep between looks once the wait passed 20 ms
  // Asks watch->check (and the clock against watch->timeout) at most this often.
  absl::Duration check_every = absl::Milliseconds(1);
};

// OK when the stream finished. Otherwise, with an active watch: the check's
// error, or DEADLINE_EXCEEDED after watch->timeout naming it, in both cases
// after watch->abort_communicators(that status) and the stream draining;
// INTERNAL when it did not drain within watch->drain_after_abort.
absl::Status BoundedStreamWait(const BoundedStreamWaitParams& p);

}  // namespace strata
