// The CollectiveWatch (worker/backend/collective_watch.h) over a replica
// rank's communicators: check = the first AsyncError among them,
// abort_communicators = Abort on each. StepExecutor::Connect hands it to the
// backend, so a decode step whose NCCL all-reduce waits on a dead peer fails
// after the collective timeout instead of hanging the worker.
#pragma once

#include <vector>

#include "absl/time/time.h"
#include "parallel/communicator.h"
#include "worker/backend/collective_watch.h"

namespace strata {

// `comms` (nulls skipped) must outlive the watch's use: unset it with
// Backend::WatchCollectives({}) before destroying them. No communicators:
// an inactive watch.
CollectiveWatch WatchCommunicators(std::vector<parallel::Communicator*> comms, absl::Duration timeout);

}  // namespace strata
