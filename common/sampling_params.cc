#include "common/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace strata {
namespace {

// The comparisons are written so that NaN fails them.
absl::Status OutOfRange(const char* field, const char* range, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat("sampling parameter ", field, " must be ", range, ", got ", value));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return OutOfRange("temperature", "finite and >= 0 (0 = greedy)", p.temperature);
  }
  if (p.top_k < 0) return OutOfRange("top_k", ">= 0 (0 = off)", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return OutOfRange("top_p", "in (0, 1] (1 = off)", p.top_p);
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return OutOfRange("min_p", "in [0, 1] (0 = off)", p.min_p);
  }
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f)) {
    return OutOfRange("repetition_penalty", "finite and > 0 (1 = off)", p.repetition_penalty);
  }
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return OutOfRange("presence_penalty", "in [-2, 2] (0 = off)", p.presence_penalty);
  }
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return OutOfRange("frequency_penalty", "in [-2, 2] (0 = off)", p.frequency_penalty);
  }
  if (p.penalty_last_n < -1) {
    return OutOfRange("penalty_last_n", ">= -1 (-1 = whole history, 0 = off)",
                      p.penalty_last_n);
  }
  return absl::OkStatus();
}

}  // namespace strata
