// A KeyValueStore over a directory that the ranks of one host share: for
// processes that meet without a coordinator (bench/collective, tests that
// fork ranks). Set writes a temporary file and renames it into place, so a
// reader never sees a partial value; Get polls for the file every 2 ms.
//
// Threading: thread-safe (the file system is the only state).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

class FileStore : public KeyValueStore {
 public:
  // `dir` must exist; keys map to file names ('/' becomes '%').
  explicit FileStore(std::string dir);
  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;

 private:
  std::string PathOf(const std::string& key) const;
  std::string dir_;
};

}  // namespace strata::parallel
