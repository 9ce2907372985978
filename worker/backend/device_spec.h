// Which device a worker runs its model on: `--device cpu` or `--device cuda:N`.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace strata {

enum class DeviceKind { kCpu, kCuda };

struct DeviceSpec {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // CUDA device ordinal (as cudaSetDevice counts them); 0 for cpu

  std::string ToString() const;  // "cpu" or "cuda:N"
  bool operator==(const DeviceSpec& o) const { return kind == o.kind && index == o.index; }
};

// "cpu", "cuda" (= cuda:0) or "cuda:N" with N in [0, 1023]; INVALID_ARGUMENT
// naming the text otherwise.
absl::StatusOr<DeviceSpec> ParseDeviceSpec(absl::string_view text);

}  // namespace strata
