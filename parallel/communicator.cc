#include "parallel/communicator.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace strata::parallel {

absl::Status Communicator::BindStream(void* stream) {
  if (stream == nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      Describe(), ": BindStream: this communicator works on host buffers and cannot order itself after a device "
      "stream (device buffers need an NCCL communicator, e.g. --collective-transport nccl or auto)"));
}

std::string HostName() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "unknown-host";
  return buffer;
}

size_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kF32:
    case DataType::kI32:
      return 4;
    case DataType::kF16:
    case DataType::kBF16:
      return 2;
    case DataType::kU8:
      return 1;
  }
  return 0;
}

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kF32:
      return "f32";
    case DataType::kF16:
      return "f16";
    case DataType::kBF16:
      return "bf16";
    case DataType::kI32:
      return "i32";
    case DataType::kU8:
      return "u8";
  }
  return "?";
}

}  // namespace strata::parallel
