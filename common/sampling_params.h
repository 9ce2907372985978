// How one sequence picks its next token: the knobs of the sampler chain and
// their validation. Plain data in common/ (no dependency on the worker), so the
// coordinator can validate a request's parameters at admission and send the
// same struct to the worker that samples.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace strata {

// The chain runs in this order (llama.cpp's common sampler chain):
//   penalties -> top_k -> top_p -> min_p -> temperature -> softmax -> draw.
// top_k, top_p and min_p see the penalized logits at temperature 1; the
// temperature only shapes the distribution the token is drawn from.
struct SamplingParams {
  // Divides the logits after the filters. 0 selects greedy decoding: argmax of
  // the penalized logits, lowest token id on ties, filters ignored.
  float temperature = 1.0f;
  // Keep only the top_k most likely tokens. 0 disables.
  int top_k = 0;
  // Keep the smallest set of most likely tokens whose probability sums to
  // >= top_p (nucleus sampling). 1 disables.
  float top_p = 1.0f;
  // Drop tokens whose probability is below min_p * (probability of the most
  // likely token). 0 disables.
  float min_p = 0.0f;
  // HF / llama.cpp repetition penalty on every token seen in the penalty
  // window: logit > 0 ? logit / r : logit * r. 1 disables.
  float repetition_penalty = 1.0f;
  // OpenAI-style additive penalties on the same window, applied after the
  // repetition penalty: logit -= presence * [count > 0] + frequency * count.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // How many of the most recent history tokens (prompt + generated) the
  // penalties look at. -1: the whole history; 0: penalties off.
  int penalty_last_n = 64;
  // Seed of the sequence's RNG. Unset: one is drawn from std::random_device
  // (Sampler::seed() reports it so a run can be replayed).
  std::optional<uint64_t> seed;
};

// OK, or INVALID_ARGUMENT naming the first bad field and its allowed range:
//   temperature finite and >= 0      top_k >= 0          top_p in (0, 1]
//   min_p in [0, 1]                  repetition_penalty finite and > 0
//   presence_penalty, frequency_penalty in [-2, 2]     penalty_last_n >= -1
absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace strata
