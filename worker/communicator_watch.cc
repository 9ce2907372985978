#include "worker/communicator_watch.h"

#include <algorithm>
#include <utility>

namespace strata {

CollectiveWatch WatchCommunicators(std::vector<parallel::Communicator*> comms, absl::Duration timeout) {
  comms.erase(std::remove(comms.begin(), comms.end(), nullptr), comms.end());
  CollectiveWatch watch;
  if (comms.empty()) return watch;
  watch.timeout = timeout;
  watch.check = [comms] {
    for (parallel::Communicator* c : comms) {
      if (absl::Status s = c->AsyncError(); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  watch.abort_communicators = [comms](const absl::Status& why) {
    for (parallel::Communicator* c : comms) c->Abort(why);
  };
  return watch;
}

}  // namespace strata
