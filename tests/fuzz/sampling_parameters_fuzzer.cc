// libFuzzer target for the `sampling_parameters` JSON (Triton's vLLM backend
// keys): any text must give a Status naming the key or settings that pass the
// sampling validation's range checks or fail them cleanly. Built and run by
// scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

#include "common/sampling_params.h"
#include "coordinator/frontend/vllm_sampling_parameters.h"
#include "coordinator/generation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::coordinator::GenerationRequest request;
  bool parse_special = false;
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  absl::Status s = strata::coordinator::frontend::ApplyVllmSamplingParameters(json, &request, &parse_special);
  if (!s.ok()) {
    if (s.code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    if (s.message().size() > 4096) __builtin_trap();  // client input is quoted truncated
    return 0;
  }
  if (request.max_tokens < 0) __builtin_trap();
  (void)strata::ValidateSamplingParams(request.sampling);
  size_t sink = request.stop.size() + request.stop_token_ids.size();
  for (const auto& stop : request.stop) sink += stop.size();
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
