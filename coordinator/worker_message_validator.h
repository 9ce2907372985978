// Bounds and checks for every message a worker sends on WorkerLink.Attach,
// in one place, before any of its fields are used. A worker is a process on
// the network: a field it sends is an input, and one out of bounds (a KV
// pool of 2^31 blocks, a token id outside the vocabulary, a step it was not
// asked for) must end that worker's stream, never the coordinator or a
// client's answer.
//
// Pure functions of the message and what the coordinator expects; no state,
// no I/O, so a fuzz target can call them directly. Errors are
// INVALID_ARGUMENT naming the field, the value and the bound
// ("Register.kv_capacity_blocks 2147483647 exceeds the limit of 4194304").
//
// What is checked here is shape and range. Whether a valid Register fits
// this coordinator (protocol version, layout, model, block size) is
// Cluster::ReplicaFor's; whether its rank is free is Replica::Attach's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "strata/v1/worker.pb.h"

namespace strata::coordinator {

struct RegisterLimits {
  // The KV pool the scheduler allocates bookkeeping for, per replica. 2^22
  // blocks is 64 Mi tokens at block_size 16: about 10x what the largest
  // single GPU (141 GB) holds for the smallest model we serve (135M params,
  // ~23 KiB of f16 KV per token), while the coordinator's per-block state
  // (BlockAllocator: 28 bytes a block) stays at ~112 MiB per replica instead
  // of the 56 GiB that 2^31 blocks asked for (std::bad_alloc).
  uint32_t max_kv_capacity_blocks = uint32_t{1} << 22;
  // Same range as the coordinator's --block-size.
  uint32_t max_block_size = 1024;
  // Same range as --tensor-parallel-size / --pipeline-parallel-size.
  uint32_t max_tp_size = 64;
  uint32_t max_pp_size = 64;
  // Model shape bounds: larger than any served model, small enough that no
  // coordinator structure sized by them can exhaust memory.
  uint32_t max_vocab_size = uint32_t{1} << 24;
  uint32_t max_num_layers = 4096;
  uint32_t max_context_length = uint32_t{1} << 24;
  // Strings (bytes). Names and ids are logged: no control characters.
  size_t max_name_bytes = 256;         // model.name, device
  size_t max_fingerprint_bytes = 256;  // model.fingerprint
  size_t max_source_bytes = 4096;      // model.source (a path)
  size_t max_peer_address_bytes = 512; // peer_address (HOST:PORT or a URI)
};

// What the coordinator expects of one rank's answer to one StepPlan.
struct StepExpectation {
  uint64_t step_id = 0;           // the plan awaited (the oldest outstanding)
  int32_t vocab_size = 0;         // token ids must be in [0, vocab_size)
  // Sequences the plan scheduled (new_sequences + running_sequences): a
  // token may only be for one of these, at most one each.
  const absl::flat_hash_set<uint64_t>* scheduled = nullptr;
  // Every sequence the plan names (scheduled, finished, preempted): a
  // StepError may only concern these.
  const absl::flat_hash_set<uint64_t>* mentioned = nullptr;
};

// StepError.message is cut to this many bytes before it reaches a log or a
// client (TruncatedErrorMessage); longer is not a violation.
inline constexpr size_t kMaxStepErrorMessageBytes = 4096;
// Leave.reason longer than this is a violation (it is logged and reaches
// clients in their errors).
inline constexpr size_t kMaxLeaveReasonBytes = 1024;
// StepResult.execute_micros above a day is nonsense (it feeds metrics).
inline constexpr uint64_t kMaxExecuteMicros = uint64_t{86400} * 1000 * 1000;

absl::Status ValidateRegister(const ::strata::worker::v1::Register& reg, const RegisterLimits& limits);
absl::Status ValidateStepResult(const ::strata::worker::v1::StepResult& result, const StepExpectation& expect);
absl::Status ValidateLeave(const ::strata::worker::v1::Leave& leave);

// `message` cut to kMaxStepErrorMessageBytes (on a UTF-8 boundary), with
// " ... (truncated)" appended when cut.
std::string TruncatedErrorMessage(const std::string& message);

}  // namespace strata::coordinator
