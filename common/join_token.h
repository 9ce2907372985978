// The shared secret that admits a worker to a coordinator's worker port
// (--join-token-file on strata-coordinator and strata-worker), and the
// random tokens the coordinator hands out (a worker group's rendezvous-store
// token).
//
// A join token is the first line of its file, with surrounding whitespace
// trimmed; it must be at least kMinJoinTokenBytes bytes of printable ASCII
// (it travels as gRPC metadata). Nothing here logs or echoes a token:
// errors name the file, never its contents.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace strata {

// gRPC metadata key that carries the join token on every worker-port call.
inline constexpr char kJoinTokenMetadata[] = "x-strata-join-token";
// gRPC metadata key of a worker group's rendezvous-store token
// (Registered.store_token) on every RendezvousStore call.
inline constexpr char kStoreTokenMetadata[] = "x-strata-store-token";
inline constexpr size_t kMinJoinTokenBytes = 16;
// A longer "token" is certainly not one (and would bloat every call's headers).
inline constexpr size_t kMaxJoinTokenBytes = 4096;

// The token in `path`'s first line, trimmed. INVALID_ARGUMENT (naming the
// file and the rule, not the token) when it is shorter than
// kMinJoinTokenBytes, longer than kMaxJoinTokenBytes or not printable ASCII;
// NOT_FOUND when the file cannot be read.
absl::StatusOr<std::string> ReadJoinTokenFile(const std::string& path);

// `bytes` random bytes from the OS (std::random_device, /dev/urandom on
// Linux) as 2 * bytes lowercase hex digits.
std::string RandomHexToken(size_t bytes);

// a == b in time that depends only on the lengths, not on where they differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace strata
