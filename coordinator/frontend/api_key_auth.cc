#include "coordinator/frontend/api_key_auth.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/join_token.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace strata::coordinator::frontend {
namespace {

constexpr size_t kMinKeyBytes = 16;
constexpr size_t kMaxKeyBytes = 256;

bool IsKeyChar(char c) { return c > 0x20 && c < 0x7F; }

absl::string_view Metadata(const grpc::ServerContext& context, absl::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace

std::string PresentedApiKey(const grpc::ServerContext& context) {
  absl::string_view auth = absl::StripAsciiWhitespace(Metadata(context, "authorization"));
  if (!auth.empty()) {
    if (auth.size() > 7 && absl::EqualsIgnoreCase(auth.substr(0, 7), "bearer ")) {
      return std::string(absl::StripAsciiWhitespace(auth.substr(7)));
    }
    return "";  // another scheme: not an API key
  }
  return std::string(absl::StripAsciiWhitespace(Metadata(context, "x-api-key")));
}

absl::StatusOr<ApiKeys::KeySet> ApiKeys::Parse(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--api-keys-file: cannot read '", path, "'"));
  KeySet set;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    std::string name = absl::StrCat("key ", set.keys.size() + 1);
    absl::string_view key = l;
    if (const size_t colon = l.find(':'); colon != absl::string_view::npos) {
      name = std::string(absl::StripAsciiWhitespace(l.substr(0, colon)));
      key = absl::StripAsciiWhitespace(l.substr(colon + 1));
    }
    const auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("--api-keys-file ", path, " line ", number, ": ", what));
    };
    if (key.size() < kMinKeyBytes || key.size() > kMaxKeyBytes) {
      return bad(absl::StrCat("a key must be ", kMinKeyBytes, " to ", kMaxKeyBytes, " characters long"));
    }
    for (char c : key) {
      if (!IsKeyChar(c)) return bad("a key must be printable ASCII without spaces");
    }
    set.keys.emplace_back(key);
    set.names.push_back(std::move(name));
  }
  if (in.bad()) return absl::NotFoundError(absl::StrCat("--api-keys-file: cannot read '", path, "'"));
  if (set.keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--api-keys-file ", path, ": no key in the file"));
  }
  return set;
}

ApiKeys::FileStamp ApiKeys::Stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size)};
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Load(const std::string& path, Options options) {
  const FileStamp stamp = Stamp(path);
  absl::StatusOr<KeySet> set = Parse(path);
  if (!set.ok()) return set.status();
  std::unique_ptr<ApiKeys> keys(new ApiKeys(path, std::move(options)));
  {
    absl::MutexLock lock(&keys->mu_);
    keys->keys_ = std::make_shared<const KeySet>(std::move(*set));
    keys->stamp_ = stamp;
    keys->next_check_ = absl::Now() + keys->options_.recheck;
  }
  return keys;
}

void ApiKeys::MaybeReload() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now < next_check_) return;
  next_check_ = now + options_.recheck;
  const FileStamp stamp = Stamp(path_);
  if (stamp == stamp_) return;  // unchanged (a broken file stays broken until it changes)
  stamp_ = stamp;
  absl::StatusOr<KeySet> set = Parse(path_);
  if (!set.ok()) {
    if (!failing_ && options_.log) {
      options_.log(absl::StrCat("API keys: reloading failed, keeping the last good ", keys_->keys.size(),
                                " key(s): ", set.status().message()));
    }
    failing_ = true;
    return;
  }
  failing_ = false;
  if (options_.log) {
    options_.log(absl::StrCat("API keys: reloaded ", set->keys.size(), " key(s) from ", path_, " (",
                              absl::StrJoin(set->names, ", "), ")"));
  }
  keys_ = std::make_shared<const KeySet>(std::move(*set));
}

std::shared_ptr<const ApiKeys::KeySet> ApiKeys::Current() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

std::vector<std::string> ApiKeys::names() const { return Current()->names; }

absl::Status ApiKeys::CheckKey(absl::string_view presented) {
  if (presented.empty()) {
    return absl::UnauthenticatedError("missing API key: send 'authorization: Bearer <key>'");
  }
  MaybeReload();
  const std::shared_ptr<const KeySet> set = Current();
  bool match = false;
  for (const std::string& key : set->keys) match |= ConstantTimeEquals(presented, key);
  if (!match) return absl::UnauthenticatedError("invalid API key");
  return absl::OkStatus();
}

absl::Status ApiKeys::Check(const grpc::ServerContext& context) { return CheckKey(PresentedApiKey(context)); }

}  // namespace strata::coordinator::frontend
