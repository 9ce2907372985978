#include "common/join_token.h"

#include <algorithm>
#include <fstream>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace strata {

absl::StatusOr<std::string> ReadJoinTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("join token file '", path, "' cannot be read"));
  std::string line;
  std::getline(in, line);
  const std::string token(absl::StripAsciiWhitespace(line));
  if (token.size() < kMinJoinTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat("join token file '", path, "': the token (its first line) has ",
                                                   token.size(), " bytes; at least ", kMinJoinTokenBytes,
                                                   " are required"));
  }
  if (token.size() > kMaxJoinTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat("join token file '", path, "': the token has ", token.size(),
                                                   " bytes, more than the limit of ", kMaxJoinTokenBytes));
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat("join token file '", path, "': the token must be printable ASCII without spaces"));
    }
  }
  return token;
}

std::string RandomHexToken(size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;  // /dev/urandom (or getrandom) with libstdc++ on Linux
  std::string out;
  out.reserve(bytes * 2);
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned b = rd() & 0xff;
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walks the longer string whatever the contents; the length difference
  // folds into the result instead of returning early.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  // Keep the compiler from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

}  // namespace strata
