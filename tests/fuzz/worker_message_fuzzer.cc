// libFuzzer target for what the coordinator decodes from a worker: any bytes
// that parse as a WorkerMessage must be accepted or refused by the
// validators (coordinator/worker_message_validator.h) without a crash or an
// unbounded allocation, and what they accept must be in range (a Register's
// KV pool within its limit, a StepResult's tokens inside the vocabulary and
// for scheduled sequences). Built and run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_set.h"
#include "coordinator/worker_message_validator.h"
#include "strata/v1/worker.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace wire = ::strata::worker::v1;
  namespace co = ::strata::coordinator;
  wire::WorkerMessage message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (message.has_register_()) {
    co::RegisterLimits limits;
    if (co::ValidateRegister(message.register_(), limits).ok()) {
      if (message.register_().kv_capacity_blocks() > limits.max_kv_capacity_blocks) __builtin_trap();
      if (message.register_().model().name().size() > limits.max_name_bytes) __builtin_trap();
    }
  }
  if (message.has_step_result()) {
    const absl::flat_hash_set<uint64_t> scheduled = {1, 2, 3, 1ull << 40};
    absl::flat_hash_set<uint64_t> mentioned = scheduled;
    mentioned.insert(7);
    co::StepExpectation expect;
    expect.step_id = 1;
    expect.vocab_size = 49152;
    expect.scheduled = &scheduled;
    expect.mentioned = &mentioned;
    const wire::StepResult& result = message.step_result();
    if (co::ValidateStepResult(result, expect).ok()) {
      for (const wire::SampledToken& t : result.tokens()) {
        if (t.token_id() < 0 || t.token_id() >= expect.vocab_size) __builtin_trap();
        if (!scheduled.contains(t.seq_id())) __builtin_trap();
      }
    }
    if (co::TruncatedErrorMessage(result.error().message()).size() > co::kMaxStepErrorMessageBytes + 64) {
      __builtin_trap();
    }
  }
  if (message.has_leave()) (void)co::ValidateLeave(message.leave());
  return 0;
}
