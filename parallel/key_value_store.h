// The rendezvous store a replica's ranks meet through: a key -> bytes map
// where Get waits for a key another rank has not set yet. The coordinator
// serves it (coordinator_store_client.h talks to it over gRPC); every rank of a
// replica gets the same key prefix (Registered.collective_rendezvous, one per
// replica generation), so a rank that restarts meets its peers under fresh
// keys. Gloo's rendezvous and the NCCL unique-id hand-off both use it.
//
// Threading: implementations are thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strata::parallel {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;
  // Sets or overwrites `key`.
  virtual absl::Status Set(const std::string& key, const std::string& value) = 0;
  // The value of `key`, waiting up to `timeout` for some rank to set it;
  // DEADLINE_EXCEEDED naming the key when nobody did.
  virtual absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) = 0;
};

}  // namespace strata::parallel
