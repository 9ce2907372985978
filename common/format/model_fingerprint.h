// The model identity a worker reports in Register (ModelIdentity.fingerprint)
// and the coordinator checks against its own --model (--model-fingerprint
// auto): both processes compute it here, so the two agree by construction.
//
// Cost: two 1 MiB reads per file whatever its size (the default 135M model
// fingerprints in a few milliseconds), which is why it samples the ends of a
// file instead of hashing all of it: a worker's weights are authenticated by
// the join token, the fingerprint only catches a worker started on the wrong
// file.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace strata {

// A cheap content id of a model file or checkpoint directory: size and an
// FNV-1a 64 hash of the first and last MiB of each file (a directory's
// regular files in name order, names included). "size:<bytes>-fnv1a64:<hex>".
// Identical files give identical ids; it is not a cryptographic hash.
absl::StatusOr<std::string> ModelFingerprint(const std::string& path);

}  // namespace strata
