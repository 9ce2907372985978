// libFuzzer target for KServe v2 request decoding: any bytes that parse as a
// ModelInferRequest must come out of the size checks and the parser as a
// Status or a request whose every field is in range, never a crash, an
// out-of-bounds read (typed raw_input_contents, BYTES length prefixes) or an
// unbounded allocation. Built and run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "coordinator/frontend/kserve_request_parser.h"
#include "coordinator/frontend/request_limits.h"
#include "inference/grpc_service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  namespace fe = strata::coordinator::frontend;
  fe::RequestLimits limits;
  limits.max_request_bytes = 1 << 16;
  // The service runs the size checks first and parses only what passed;
  // the parser must also be safe on its own.
  const bool within_limits = fe::CheckInferRequest(request, limits).ok();
  auto parsed = fe::ParseInferRequest(request);
  if (!parsed.ok()) {
    // Errors quote client input through QuoteForError: bounded.
    if (parsed.status().message().size() > 4096) __builtin_trap();
    return 0;
  }
  size_t sink = parsed->text_input.size() + parsed->generation.stop.size() + within_limits;
  for (const auto& s : parsed->generation.stop) sink += s.size();
  for (int32_t t : parsed->generation.stop_token_ids) sink += static_cast<size_t>(t);
  if (parsed->generation.max_tokens < 0) __builtin_trap();
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
