#include "worker/backend/device_spec.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace strata {

std::string DeviceSpec::ToString() const {
  return kind == DeviceKind::kCpu ? std::string("cpu") : absl::StrCat("cuda:", index);
}

absl::StatusOr<DeviceSpec> ParseDeviceSpec(absl::string_view text) {
  if (text == "cpu") return DeviceSpec{DeviceKind::kCpu, 0};
  if (text == "cuda") return DeviceSpec{DeviceKind::kCuda, 0};
  absl::string_view rest = text;
  int index = -1;
  if (absl::ConsumePrefix(&rest, "cuda:") && !rest.empty() && rest.size() <= 4 &&
      rest.find_first_not_of("0123456789") == absl::string_view::npos && absl::SimpleAtoi(rest, &index) &&
      index >= 0 && index <= 1023) {
    return DeviceSpec{DeviceKind::kCuda, index};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device \"", text, "\": expected cpu, cuda or cuda:N (N a device ordinal, 0..1023)"));
}

}  // namespace strata
