// gloo::rendezvous::Store over a KeyValueStore: how Gloo's TCP ranks exchange
// their listening addresses through Strata's rendezvous store (in memory for
// tests, the coordinator's RendezvousStore service in production).
//
// Gloo's keys ("rank_0", ...) are stored as "<prefix>/<key>". Every wait and
// get shares one deadline (construction + timeout), so a rendezvous fails
// within `timeout` however many peers it waits for.
//
// Gloo expects errors as exceptions: a failed Set/Get throws gloo::IoException
// after recording the Status, which the caller (CreateGlooCommunicator) reads
// back with first_error() so the error keeps its code and names the key.
//
// Threading: used by the one thread that connects the Gloo context.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gloo/rendezvous/store.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  // `store` must outlive the adapter.
  GlooStoreAdapter(KeyValueStore* store, std::string prefix, absl::Duration timeout);

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

  // The first failure seen (OK when none); its message names the full key.
  const absl::Status& first_error() const { return first_error_; }

 private:
  std::string FullKey(const std::string& key) const;
  [[noreturn]] void Fail(absl::Status status);

  KeyValueStore* const store_;
  const std::string prefix_;
  const absl::Time deadline_;
  absl::Status first_error_;
};

}  // namespace strata::parallel
