#include "parallel/gloo_store_adapter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gloo/common/error.h"

namespace strata::parallel {

GlooStoreAdapter::GlooStoreAdapter(KeyValueStore* store, std::string prefix, absl::Duration timeout)
    : store_(store), prefix_(std::move(prefix)), deadline_(absl::Now() + timeout) {}

std::string GlooStoreAdapter::FullKey(const std::string& key) const {
  return absl::StrCat(prefix_, "/", key);
}

void GlooStoreAdapter::Fail(absl::Status status) {
  if (first_error_.ok()) first_error_ = status;
  throw gloo::IoException(std::string(status.message()));
}

void GlooStoreAdapter::set(const std::string& key, const std::vector<char>& data) {
  absl::Status status = store_->Set(FullKey(key), std::string(data.begin(), data.end()));
  if (!status.ok()) Fail(std::move(status));
}

std::vector<char> GlooStoreAdapter::get(const std::string& key) {
  absl::StatusOr<std::string> value =
      store_->Get(FullKey(key), std::max(deadline_ - absl::Now(), absl::ZeroDuration()));
  if (!value.ok()) Fail(value.status());
  return std::vector<char>(value->begin(), value->end());
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) get(key);
}

// Gloo passes its own default (30 s) here; the configured rendezvous deadline
// governs instead, so one setting bounds the whole rendezvous.
void GlooStoreAdapter::wait(const std::vector<std::string>& keys,
                            const std::chrono::milliseconds& /*timeout*/) {
  wait(keys);
}

}  // namespace strata::parallel
