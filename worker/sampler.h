// The token sampler: turns one sequence's logits into its next token.
//
// Chain (llama.cpp's common sampler order):
//
//   logits ─► NaN→-inf ─► penalties ─► top_k ─► top_p ─► min_p ─► /temperature ─► softmax ─► draw
//             (copy)      (window of    (T = 1 probabilities)                               u ∈ [0,1),
//                          history)                                                          inverse CDF
//
// Threading contract: one Sampler per sequence, used by one thread at a time
// (the worker's step thread). It owns the sequence's RNG, so a seed gives the
// same tokens whatever else shares the batch, and it owns a scratch buffer of
// 8 bytes x vocab (allocated on the first call, reused after) so a call does
// not allocate.
//
// Reproducibility: the RNG is std::mt19937_64 (fully specified by the
// standard) and u = (next() >> 11) * 2^-53 is walked over the surviving
// tokens' cumulative weights in an order defined by values and ids alone
// (ascending id, or rank order once top_k/top_p reordered them): no std::
// distribution (their algorithms differ between standard libraries) and no
// dependence on the order nth_element leaves.
//
// Special values: a NaN logit counts as -inf (never drawn). If any logit is
// +inf after the penalties, the distribution is uniform over the +inf tokens
// (the limit of softmax). If every logit is NaN/-inf there is nothing to draw
// and Sample returns INTERNAL.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/sampling_params.h"
#include "worker/backend/row_sampling.h"

namespace strata {

class Sampler {
 public:
  struct Result {
    int32_t token;
    // log-softmax of `token` under the distribution it was drawn from (after
    // penalties, filters and temperature). Greedy: under the penalized logits
    // at temperature 1, over the whole vocabulary.
    float logprob;
  };

  // INVALID_ARGUMENT when ValidateSamplingParams rejects `params`.
  static absl::StatusOr<std::unique_ptr<Sampler>> Create(const SamplingParams& params);

  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // logits: [vocab], not modified. history: the sequence's tokens so far
  // (prompt + generated); only its last penalty_last_n entries are read.
  // Errors: INVALID_ARGUMENT for empty logits or a history token in the
  // penalty window (its last penalty_last_n entries) outside [0, vocab);
  // INTERNAL when every logit is NaN/-inf. Draws exactly one number from the
  // RNG unless greedy, so the RNG stream depends only on the call count.
  // want_logprob = false lets greedy decoding skip the log-softmax over the
  // vocabulary (Result::logprob is then 0); the token is the same.
  absl::StatusOr<Result> Sample(absl::Span<const float> logits,
                                absl::Span<const int32_t> history, bool want_logprob = true);

  // The distribution Sample draws from, as [vocab] probabilities (0 for
  // filtered tokens); one-hot on the argmax when greedy. Runs the same chain
  // as Sample without touching the RNG. Allocates its result: meant for tests
  // and debugging, not the decode loop.
  absl::StatusOr<std::vector<float>> Probabilities(absl::Span<const float> logits,
                                                   absl::Span<const int32_t> history);

  // Advances the RNG as n non-greedy Sample calls would (each draws exactly
  // one 64-bit number), so a sequence resumed after preemption continues the
  // stream it had: Sample after SkipDraws(k) equals the (k+1)th Sample of a
  // fresh sampler with the same seed. The caller decides whether the earlier
  // calls drew (they do not when greedy).
  void SkipDraws(uint64_t n) { rng_.discard(n); }

  // Sampling on the backend (Backend::SampleLogits, which runs this chain
  // without the penalties). BackendCanSample: no penalty is on, so the
  // history is not needed. NextBackendDraw: the knobs and, unless greedy, the
  // next u from the RNG, the very draw Sample would make, so the stream of a
  // seeded sequence continues the same whichever side samples.
  bool BackendCanSample() const;
  RowSamplingKnobs NextBackendDraw();

  const SamplingParams& params() const { return params_; }
  // The RNG's seed: params().seed, or the one drawn when it was unset.
  uint64_t seed() const { return seed_; }

 private:
  // One surviving token. `value` is a logit until WeighCandidates turns it
  // into an unnormalized probability.
  struct Candidate {
    float value;
    int32_t id;
  };

  Sampler(const SamplingParams& params, uint64_t seed);

  // Fills candidates_[0, num_candidates_) in ascending id with the penalized,
  // finite logits (see the header comment for NaN/inf).
  absl::Status PrepareCandidates(absl::Span<const float> logits,
                                 absl::Span<const int32_t> history);
  void ApplyPenalties(absl::Span<const int32_t> window);
  // Greedy: the argmax of the prepared candidates and its T=1 log-probability.
  Result Argmax(bool want_logprob) const;
  // top_k, top_p, min_p, temperature. Leaves the survivors in the draw order
  // with value = exp((logit - max) / T); returns the sum of those values.
  double WeighCandidates();
  // top_p over candidates_[0, n): sorts lazily (a prefix growing fourfold)
  // and returns the length of the kept prefix, left in rank order
  // (logit descending, id ascending).
  size_t TopPLength(size_t n, float max_logit, double total);

  const SamplingParams params_;
  const uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;  // scratch, [vocab]
  size_t num_candidates_ = 0;
  std::vector<int32_t> window_;  // scratch: the sorted penalty window
};

}  // namespace strata
