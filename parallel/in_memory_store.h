// A KeyValueStore in one process's memory: for ranks running as threads of one
// process (tests) and as the coordinator's table behind its gRPC service.
//
// Threading: thread-safe; Get blocks the calling thread until the key is set
// or the timeout passes.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

class InMemoryStore : public KeyValueStore {
 public:
  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  // Removes every key starting with `prefix` (an old replica generation).
  void ErasePrefix(const std::string& prefix);
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::parallel
