// Parameters of device sampling: one next token per row of logits [rows, vocab],
// the CPU Sampler's chain (worker/sampler.h) without the penalties:
//
//   logits ─► NaN→-inf ─► top_k ─► top_p ─► min_p ─► /temperature ─► softmax ─► draw
//                                                                              target = u * total,
//                                                                              first cum > target
//
// Penalties (repetition / frequency / presence) stay on the host: they need the
// sequence's history, and the caller applies them to the logits before this runs.
// u is drawn on the host exactly as Sampler::Sample does (one (next() >> 11) * 2^-53
// per non-greedy call of the sequence's std::mt19937_64), so a seeded request draws
// the same token on either backend up to the rounding of the sums (double here too).
//
// Per-row knobs are arrays of [rows]; a null array means "off" for every row
// (temperature 1, top_k 0, top_p 1, min_p 0). Values must pass
// ValidateSamplingParams (common/sampling_params.h); others give unspecified (but
// memory-safe) results. temperature 0 is greedy: argmax, lowest id on ties, filters
// ignored, logprob under the T = 1 softmax over the whole vocabulary.
//
// Outputs: tokens[r] and logprobs[r] as Sampler::Result defines them. A row whose
// logits are all NaN/-inf (the CPU Sampler's INTERNAL error) gets token -1 and
// logprob NaN. A +inf logit makes the row uniform over its +inf tokens (softmax's
// limit), as on the CPU.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct SampleParams {
  const float* logits = nullptr;       // [rows, logits_stride], the first vocab used
  int64_t rows = 0;
  int32_t vocab = 0;
  int64_t logits_stride = 0;           // floats between rows, >= vocab
  const float* temperature = nullptr;  // [rows] or null
  const int32_t* top_k = nullptr;      // [rows] or null
  const float* top_p = nullptr;        // [rows] or null
  const float* min_p = nullptr;        // [rows] or null
  const double* u = nullptr;           // [rows] uniform in [0, 1); unread for greedy rows
  int32_t* tokens = nullptr;           // [rows] out
  float* logprobs = nullptr;           // [rows] out
};

}  // namespace strata::cuda
