// API-key client authentication for the client port (--api-keys-file).
//
// The file holds one key per line: "key" or "name:key" (split at the first
// ':', so a key containing ':' needs a name in front). Blank lines and lines
// starting with '#' are ignored; surrounding whitespace is trimmed. The name
// is only for the operator (logged when keys are reloaded; keys never are).
// A key is 16 to 256 printable ASCII characters without spaces.
//
// Clients send `authorization: Bearer <key>` (as OpenAI/vLLM clients do) or
// `x-api-key: <key>`. Check() answers
//   no key sent            UNAUTHENTICATED "missing API key: send 'authorization: Bearer <key>'"
//   a key that is not one  UNAUTHENTICATED "invalid API key" (HTTP 401, as vLLM
//                          answers; PERMISSION_DENIED would claim the caller
//                          is known but not allowed, and Strata has no
//                          per-key permissions)
// Keys are compared in constant time (every configured key is compared in
// full, whatever matched), never logged and never echoed.
//
// Reload: Check() looks at the file's mtime and size at most once per
// `recheck` (1 s) and reloads it when they changed. A file that becomes
// unreadable or empty of keys keeps the last good keys and is logged once
// until it loads again.
//
// Thread ownership: Check() is called concurrently from gRPC threads; the
// key set is replaced under mu_ and read through a shared_ptr copy.
#pragma once

#include <grpcpp/server_context.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace strata::coordinator::frontend {

class ApiKeys {
 public:
  struct Options {
    absl::Duration recheck = absl::Seconds(1);
    std::function<void(const std::string&)> log;  // may be empty
  };
  // NOT_FOUND naming the path when it cannot be read; INVALID_ARGUMENT naming
  // the line (never the key) when a line is malformed or there is no key.
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(const std::string& path, Options options);
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(const std::string& path) { return Load(path, Options{}); }

  // OK when the call carries a configured key (see the header comment).
  absl::Status Check(const grpc::ServerContext& context);
  // The same on a key as sent (testing and non-gRPC callers): empty = none.
  absl::Status CheckKey(absl::string_view presented);
  // True when `key` is a configured key (CheckKey's compare and reload; for
  // callers outside gRPC, e.g. /metrics' HTTP Basic password).
  bool Accepts(absl::string_view key) { return CheckKey(key).ok(); }

  // Names (or "key N") of the keys in force, for logs.
  std::vector<std::string> names() const;

 private:
  struct KeySet {
    std::vector<std::string> keys;
    std::vector<std::string> names;
  };
  struct FileStamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    bool operator==(const FileStamp& o) const { return mtime_ns == o.mtime_ns && size == o.size; }
  };
  ApiKeys(std::string path, Options options) : path_(std::move(path)), options_(std::move(options)) {}
  static absl::StatusOr<KeySet> Parse(const std::string& path);
  static FileStamp Stamp(const std::string& path);
  void MaybeReload();
  std::shared_ptr<const KeySet> Current() const;

  const std::string path_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;  // a reload failed; logged once
};

// The key a call presents ("" when none): `authorization: Bearer <key>`
// (scheme case-insensitive) or else `x-api-key`.
std::string PresentedApiKey(const grpc::ServerContext& context);

}  // namespace strata::coordinator::frontend
