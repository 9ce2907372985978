#include "worker/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace strata {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// top_p sorts this many of the best candidates first, then grows the sorted
// prefix fourfold until the kept mass reaches top_p. Most nuclei fit in the first chunk.
constexpr size_t kTopPFirstChunk = 128;

// The canonical rank order: higher logit first, lower id first on ties. Every
// filter cuts a prefix of this order, so ties at a cut resolve the same way on
// every platform.
bool Better(float a_value, int32_t a_id, float b_value, int32_t b_id) {
  return a_value > b_value || (a_value == b_value && a_id < b_id);
}

// u in [0, 1) from the top 53 bits: the same value on every platform.
double UniformDouble(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sampler>> Sampler::Create(const SamplingParams& params) {
  RETURN_IF_ERROR(ValidateSamplingParams(params));
  uint64_t seed;
  if (params.seed.has_value()) {
    seed = *params.seed;
  } else {
    std::random_device device;
    seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  return std::unique_ptr<Sampler>(new Sampler(params, seed));
}

Sampler::Sampler(const SamplingParams& params, uint64_t seed)
    : params_(params), seed_(seed), rng_(seed) {}

bool Sampler::BackendCanSample() const {
  const bool penalties = params_.penalty_last_n != 0 &&
                         (params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                          params_.frequency_penalty != 0.0f);
  return !penalties;
}

RowSamplingKnobs Sampler::NextBackendDraw() {
  RowSamplingKnobs k;
  k.temperature = params_.temperature;
  k.top_k = params_.top_k;
  k.top_p = params_.top_p;
  k.min_p = params_.min_p;
  k.u = params_.temperature == 0.0f ? 0.0 : UniformDouble(rng_);
  return k;
}

absl::StatusOr<Sampler::Result> Sampler::Sample(absl::Span<const float> logits,
                                                absl::Span<const int32_t> history, bool want_logprob) {
  RETURN_IF_ERROR(PrepareCandidates(logits, history));
  if (params_.temperature == 0.0f) return Argmax(want_logprob);

  const double total = WeighCandidates();
  const double target = UniformDouble(rng_) * total;
  const Candidate* c = candidates_.data();
  const size_t n = num_candidates_;
  size_t chosen = n;
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += c[i].value;
    if (cum > target) {
      chosen = i;
      break;
    }
  }
  if (chosen == n) {
    // u * total rounded up to total: take the last token with any weight (the
    // maximum has weight 1, so the scan stops by it).
    chosen = n - 1;
    while (chosen > 0 && c[chosen].value == 0.0f) --chosen;
  }
  return Result{c[chosen].id,
                static_cast<float>(std::log(static_cast<double>(c[chosen].value)) -
                                   std::log(total))};
}

absl::StatusOr<std::vector<float>> Sampler::Probabilities(absl::Span<const float> logits,
                                                          absl::Span<const int32_t> history) {
  RETURN_IF_ERROR(PrepareCandidates(logits, history));
  std::vector<float> probs(logits.size(), 0.0f);
  if (params_.temperature == 0.0f) {
    probs[Argmax(false).token] = 1.0f;
    return probs;
  }
  const double total = WeighCandidates();
  for (size_t i = 0; i < num_candidates_; ++i) {
    probs[candidates_[i].id] = static_cast<float>(candidates_[i].value / total);
  }
  return probs;
}

absl::Status Sampler::PrepareCandidates(absl::Span<const float> logits,
                                        absl::Span<const int32_t> history) {
  if (logits.empty()) return absl::InvalidArgumentError("sampler: logits are empty");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampler: vocabulary of ", logits.size(), " does not fit int32 token ids"));
  }
  const int32_t vocab = static_cast<int32_t>(logits.size());

  // The window is checked even when the penalties are neutral, so whether a
  // request is valid does not depend on the penalty values.
  absl::Span<const int32_t> window;
  if (params_.penalty_last_n != 0) {
    const size_t len = params_.penalty_last_n < 0
                           ? history.size()
                           : std::min(history.size(), static_cast<size_t>(params_.penalty_last_n));
    window = history.subspan(history.size() - len);
    for (int32_t id : window) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sampler: history token ", id, " is outside the vocabulary [0, ", vocab, ")"));
      }
    }
  }

  candidates_.resize(logits.size());
  Candidate* c = candidates_.data();
  for (int32_t i = 0; i < vocab; ++i) {
    const float l = logits[i];
    c[i] = Candidate{std::isnan(l) ? -kInf : l, i};
  }
  const bool penalize = params_.repetition_penalty != 1.0f ||
                        params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  if (penalize && !window.empty()) ApplyPenalties(window);

  // Drop the -inf tokens (stable, so ids stay ascending).
  size_t n = 0;
  bool any_pos_inf = false;
  for (int32_t i = 0; i < vocab; ++i) {
    const Candidate cand = c[i];
    if (cand.value == -kInf) continue;
    any_pos_inf |= cand.value == kInf;
    c[n++] = cand;
  }
  if (n == 0) {
    return absl::InternalError(
        "sampler: all logits are NaN/-inf (after penalties); nothing to sample");
  }
  if (any_pos_inf) {
    // softmax's limit: all the mass, evenly, on the +inf tokens.
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
      if (c[i].value == kInf) c[m++] = Candidate{0.0f, c[i].id};
    }
    n = m;
  }
  num_candidates_ = n;
  return absl::OkStatus();
}

void Sampler::ApplyPenalties(absl::Span<const int32_t> window) {
  // Sorting the window gives each distinct token's count without a
  // vocab-sized counter; the window is short (penalty_last_n, default 64).
  window_.assign(window.begin(), window.end());
  std::sort(window_.begin(), window_.end());
  const float r = params_.repetition_penalty;
  for (size_t i = 0; i < window_.size();) {
    size_t j = i;
    while (j < window_.size() && window_[j] == window_[i]) ++j;
    const float count = static_cast<float>(j - i);
    float& l = candidates_[window_[i]].value;  // ids are < vocab, checked by the caller
    if (r != 1.0f) l = l > 0.0f ? l / r : l * r;
    l -= params_.presence_penalty + params_.frequency_penalty * count;
    i = j;
  }
}

Sampler::Result Sampler::Argmax(bool want_logprob) const {
  const Candidate* c = candidates_.data();
  const size_t n = num_candidates_;
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (c[i].value > c[best].value) best = i;  // strict: ids ascend, so the lowest id wins ties
  }
  if (!want_logprob) return Result{c[best].id, 0.0f};
  const float max_logit = c[best].value;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(c[i].value - max_logit);
  return Result{c[best].id, static_cast<float>(-std::log(sum))};
}

double Sampler::WeighCandidates() {
  Candidate* c = candidates_.data();
  const auto better = [](const Candidate& a, const Candidate& b) {
    return Better(a.value, a.id, b.value, b.id);
  };
  size_t n = num_candidates_;
  // The draw walks the survivors in an order fixed by values and ids alone,
  // never by how a std:: algorithm happened to leave them: ascending id when
  // nothing reordered them, else rank order.
  enum class Order { kIds, kRank, kScrambled } order = Order::kIds;

  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    // O(V): the k best land in front, in no particular order (see the end).
    std::nth_element(c, c + params_.top_k, c + n, better);
    n = static_cast<size_t>(params_.top_k);
    order = Order::kScrambled;
  }

  float max_logit = c[0].value;
  for (size_t i = 1; i < n; ++i) max_logit = std::max(max_logit, c[i].value);

  if (params_.top_p < 1.0f || params_.min_p > 0.0f) {
    // top_p normalizes over the top_k survivors; sum before min_p shrinks them.
    double total = 0.0;
    if (params_.top_p < 1.0f) {
      for (size_t i = 0; i < n; ++i) total += std::exp(c[i].value - max_logit);
    }
    // top_p and min_p each keep a prefix of the rank order and min_p's
    // threshold (relative to the maximum, which top_p always keeps) does not
    // depend on top_p, so applying min_p first gives the same intersection
    // and leaves top_p less to sort. The compaction is stable.
    if (params_.min_p > 0.0f) {
      // p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p)
      const float min_logit = max_logit + std::log(params_.min_p);
      size_t m = 0;
      for (size_t i = 0; i < n; ++i) {
        if (c[i].value >= min_logit) c[m++] = c[i];
      }
      n = m;
    }
    if (params_.top_p < 1.0f) {
      n = TopPLength(n, max_logit, total);  // leaves [0, n) in rank order
      order = Order::kRank;
    }
  }

  if (order == Order::kScrambled) std::sort(c, c + n, better);  // top_k alone: k log k

  // Temperature and softmax weights. (logit - max) / T cannot overflow the
  // way logit / T could for tiny T.
  const float t = params_.temperature;
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float w = std::exp((c[i].value - max_logit) / t);
    c[i].value = w;
    total += w;
  }
  num_candidates_ = n;
  return total;
}

size_t Sampler::TopPLength(size_t n, float max_logit, double total) {
  Candidate* c = candidates_.data();
  const auto better = [](const Candidate& a, const Candidate& b) {
    return Better(a.value, a.id, b.value, b.id);
  };
  const double p = params_.top_p;
  double cum = 0.0;
  size_t sorted = 0;
  size_t end = std::min(n, kTopPFirstChunk);
  while (true) {
    // Bring the next best (end - sorted) candidates into [sorted, end), in order.
    if (end < n) std::nth_element(c + sorted, c + end, c + n, better);
    std::sort(c + sorted, c + end, better);
    for (size_t i = sorted; i < end; ++i) {
      cum += std::exp(c[i].value - max_logit) / total;
      if (cum >= p) return i + 1;
    }
    if (end == n) return n;
    sorted = end;
    end = std::min(n, 4 * end);
  }
}

}  // namespace strata
