// A KeyValueStore in one process's memory: for ranks running as threads of one
// process (tests) and as the coordinator's table behind its gRPC service (one
// store per worker group, coordinator/rendezvous_service.h).
//
// Limits (optional, default unlimited): a Set that would make the store hold
// more than max_keys keys or more than max_total_bytes bytes of keys plus
// values is RESOURCE_EXHAUSTED naming the limit, and changes nothing.
// Close() ends the store: waiting Gets return at once and every later call
// is ABORTED (the group it served is gone).
//
// Threading: thread-safe; Get blocks the calling thread until the key is set,
// the timeout passes or the store is closed.
#pragma once

#include <cstddef>
#include <limits>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

struct InMemoryStoreLimits {
  size_t max_keys = std::numeric_limits<size_t>::max();
  size_t max_total_bytes = std::numeric_limits<size_t>::max();  // sum of key + value sizes
};

class InMemoryStore : public KeyValueStore {
 public:
  InMemoryStore() = default;
  explicit InMemoryStore(InMemoryStoreLimits limits) : limits_(limits) {}

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  // Removes every key starting with `prefix` (an old replica generation).
  void ErasePrefix(const std::string& prefix);
  // Drops every key, wakes waiting Gets (ABORTED) and refuses later calls.
  void Close();
  size_t size() const;
  // Bytes held: keys plus values.
  size_t total_bytes() const;

 private:
  const InMemoryStoreLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace strata::parallel
