#include "parallel/in_memory_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace strata::parallel {

absl::Status InMemoryStore::Set(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  values_[key] = value;
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryStore::Get(const std::string& key, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto present = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return values_.contains(key); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&present), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("rendezvous store: key '", key,
                                                    "' was not set within ",
                                                    absl::FormatDuration(timeout)));
  }
  return values_.at(key);
}

void InMemoryStore::ErasePrefix(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(values_, [&](const auto& kv) { return absl::StartsWith(kv.first, prefix); });
}

size_t InMemoryStore::size() const {
  absl::MutexLock lock(&mu_);
  return values_.size();
}

}  // namespace strata::parallel
