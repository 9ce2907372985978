// libFuzzer target for strata.v1 requests: bytes that parse as a
// GenerateRequest, TokenizeRequest or DetokenizeRequest (the first byte picks
// which) must pass or fail the per-field size checks with a bounded message,
// before anything else of the service looks at them. Built and run by
// scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "coordinator/frontend/request_limits.h"
#include "strata/v1/strata.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  namespace fe = strata::coordinator::frontend;
  fe::RequestLimits limits;
  limits.max_request_bytes = 1 << 16;
  const int kind = data[0] % 2;
  ++data;
  --size;
  absl::Status s;
  if (kind == 0) {
    strata::v1::GenerateRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    s = fe::CheckGenerateRequest(request, limits);
    if (s.ok()) s = fe::CheckModelName("model", request.model());
  } else {
    strata::v1::TokenizeRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    s = fe::CheckTokenizeRequest(request, limits);
  }
  if (!s.ok() && s.message().size() > 4096) __builtin_trap();
  return 0;
}
