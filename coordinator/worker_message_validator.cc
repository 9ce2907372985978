#include "coordinator/worker_message_validator.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace strata::coordinator {

namespace wire = ::strata::worker::v1;

namespace {

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

// A string that is logged or shown: bounded, and free of control characters
// (a newline in a model name would forge log lines). Empty is allowed unless
// `required`.
absl::Status CheckText(absl::string_view field, const std::string& value, size_t max_bytes, bool required) {
  if (required && value.empty()) return Invalid(absl::StrCat(field, " is empty"));
  if (value.size() > max_bytes) {
    return Invalid(absl::StrCat(field, " has ", value.size(), " bytes, more than the limit of ", max_bytes));
  }
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return Invalid(absl::StrCat(field, " contains a control character"));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(absl::string_view field, uint64_t value, uint64_t lo, uint64_t hi) {
  if (value < lo || value > hi) {
    return Invalid(absl::StrCat(field, " ", value, " is outside [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRegister(const wire::Register& reg, const RegisterLimits& l) {
  if (absl::Status s = CheckRange("Register.tp_size", reg.tp_size(), 1, l.max_tp_size); !s.ok()) return s;
  if (absl::Status s = CheckRange("Register.pp_size", reg.pp_size(), 1, l.max_pp_size); !s.ok()) return s;
  if (reg.tp_rank() >= reg.tp_size()) {
    return Invalid(absl::StrCat("Register.tp_rank ", reg.tp_rank(), " is not below tp_size ", reg.tp_size()));
  }
  if (reg.pp_stage() >= reg.pp_size()) {
    return Invalid(absl::StrCat("Register.pp_stage ", reg.pp_stage(), " is not below pp_size ", reg.pp_size()));
  }
  // Block 0 is the null block: a usable pool has at least one more.
  if (reg.kv_capacity_blocks() > l.max_kv_capacity_blocks) {
    return Invalid(absl::StrCat("Register.kv_capacity_blocks ", reg.kv_capacity_blocks(),
                                " exceeds the limit of ", l.max_kv_capacity_blocks));
  }
  if (reg.kv_capacity_blocks() < 2) {
    return Invalid(absl::StrCat("Register.kv_capacity_blocks ", reg.kv_capacity_blocks(),
                                " is below 2 (the null block and at least one usable block)"));
  }
  if (absl::Status s = CheckRange("Register.block_size", reg.block_size(), 1, l.max_block_size); !s.ok()) return s;
  if (absl::Status s = CheckText("Register.device", reg.device(), l.max_name_bytes, false); !s.ok()) return s;
  if (absl::Status s = CheckText("Register.peer_address", reg.peer_address(), l.max_peer_address_bytes, false);
      !s.ok()) {
    return s;
  }
  if (!reg.has_model()) return Invalid("Register.model is missing");
  const wire::ModelIdentity& m = reg.model();
  if (absl::Status s = CheckText("Register.model.name", m.name(), l.max_name_bytes, true); !s.ok()) return s;
  if (absl::Status s = CheckText("Register.model.source", m.source(), l.max_source_bytes, false); !s.ok()) return s;
  if (absl::Status s = CheckText("Register.model.fingerprint", m.fingerprint(), l.max_fingerprint_bytes, false);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("Register.model.vocab_size", m.vocab_size(), 1, l.max_vocab_size); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("Register.model.num_layers", m.num_layers(), 0, l.max_num_layers); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("Register.model.context_length", m.context_length(), 1, l.max_context_length);
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateStepResult(const wire::StepResult& r, const StepExpectation& e) {
  if (r.step_id() != e.step_id) {
    return Invalid(absl::StrCat("StepResult.step_id ", r.step_id(), " is not the outstanding step ", e.step_id));
  }
  if (r.execute_micros() > kMaxExecuteMicros) {
    return Invalid(absl::StrCat("StepResult.execute_micros ", r.execute_micros(), " exceeds the limit of ",
                                kMaxExecuteMicros, " (a day)"));
  }
  absl::flat_hash_set<uint64_t> answered;
  for (const wire::SampledToken& t : r.tokens()) {
    if (e.scheduled == nullptr || !e.scheduled->contains(t.seq_id())) {
      return Invalid(absl::StrCat("StepResult.tokens: seq_id ", t.seq_id(), " was not scheduled in step ",
                                  e.step_id));
    }
    if (!answered.insert(t.seq_id()).second) {
      return Invalid(absl::StrCat("StepResult.tokens: seq_id ", t.seq_id(), " has more than one token"));
    }
    if (t.token_id() < 0 || t.token_id() >= e.vocab_size) {
      return Invalid(absl::StrCat("StepResult.tokens: token_id ", t.token_id(), " for seq_id ", t.seq_id(),
                                  " is outside the vocabulary [0, ", e.vocab_size, ")"));
    }
    // A log-probability is <= 0 (a little above from rounding) or -inf.
    if (std::isnan(t.logprob()) || t.logprob() > 1e-3f) {
      return Invalid(absl::StrCat("StepResult.tokens: logprob ", t.logprob(), " for seq_id ", t.seq_id(),
                                  " is not a log-probability"));
    }
  }
  if (r.has_error()) {
    const wire::StepError& err = r.error();
    // google.rpc.Code: 1 (CANCELLED) .. 16 (UNAUTHENTICATED); 0 is OK, which
    // is no error.
    if (err.code() < 1 || err.code() > 16) {
      return Invalid(absl::StrCat("StepResult.error.code ", err.code(),
                                  " is not a non-OK google.rpc.Code (1..16)"));
    }
    for (uint64_t id : err.seq_ids()) {
      if (e.mentioned == nullptr || !e.mentioned->contains(id)) {
        return Invalid(absl::StrCat("StepResult.error.seq_ids: seq_id ", id, " is not in step ", e.step_id));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLeave(const wire::Leave& leave) {
  return CheckText("Leave.reason", leave.reason(), kMaxLeaveReasonBytes, false);
}

std::string TruncatedErrorMessage(const std::string& message) {
  if (message.size() <= kMaxStepErrorMessageBytes) return message;
  size_t n = kMaxStepErrorMessageBytes;
  // Back up to the start of a UTF-8 sequence (never cut one in half).
  while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(message.substr(0, n), " ... (truncated)");
}

}  // namespace strata::coordinator
