#include "parallel/in_memory_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace strata::parallel {

namespace {

absl::Status Closed() { return absl::AbortedError("rendezvous store: closed (its worker group ended)"); }

}  // namespace

absl::Status InMemoryStore::Set(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  if (closed_) return Closed();
  auto it = values_.find(key);
  const size_t old_bytes = it == values_.end() ? 0 : key.size() + it->second.size();
  if (it == values_.end() && values_.size() >= limits_.max_keys) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous store: setting key '", key, "' would exceed the limit of ",
                                                     limits_.max_keys, " keys"));
  }
  const size_t new_bytes = bytes_ - old_bytes + key.size() + value.size();
  if (new_bytes > limits_.max_total_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous store: setting key '", key, "' (", value.size(),
                                                     " bytes) would exceed the limit of ", limits_.max_total_bytes,
                                                     " bytes of keys and values (", bytes_, " held)"));
  }
  values_[key] = value;
  bytes_ = new_bytes;
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryStore::Get(const std::string& key, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto present = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || values_.contains(key); };
  const bool woke = mu_.AwaitWithTimeout(absl::Condition(&present), timeout);
  if (closed_) return Closed();
  if (!woke) {
    return absl::DeadlineExceededError(absl::StrCat("rendezvous store: key '", key,
                                                    "' was not set within ",
                                                    absl::FormatDuration(timeout)));
  }
  return values_.at(key);
}

void InMemoryStore::ErasePrefix(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(values_, [&](const auto& kv) {
    if (!absl::StartsWith(kv.first, prefix)) return false;
    bytes_ -= kv.first.size() + kv.second.size();
    return true;
  });
}

void InMemoryStore::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  values_.clear();
  bytes_ = 0;
}

size_t InMemoryStore::size() const {
  absl::MutexLock lock(&mu_);
  return values_.size();
}

size_t InMemoryStore::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace strata::parallel
