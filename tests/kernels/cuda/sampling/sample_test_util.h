// Shared by the host and device parity tests of the sampling kernel: the CPU
// Sampler's expected draw for a seed, the boundary check and the row comparison.
// See sample_host_parity_test.cc for the tolerances.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/sampling/sample_params.h"
#include "worker/sampler.h"

namespace strata::cuda::sample_test {

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr double kBoundaryMargin = 1e-6;

struct RowKnobs {
  float temperature = 1.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
};

inline double FirstU(uint64_t seed) {
  std::mt19937_64 rng(seed);
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

inline SamplingParams ToParams(const RowKnobs& k, uint64_t seed) {
  SamplingParams s;
  s.temperature = k.temperature;
  s.top_k = k.top_k;
  s.top_p = k.top_p;
  s.min_p = k.min_p;
  s.seed = seed;
  return s;
}

// True when u lies within the margin of a boundary of the CPU's CDF, walked in the
// CPU's order: ascending id, or rank order (logit desc, id asc) once top_k cut or
// top_p ran.
inline bool NearBoundary(const std::vector<float>& logits, const RowKnobs& k, double u) {
  auto sampler = Sampler::Create(ToParams(k, 1));
  EXPECT_TRUE(sampler.ok());
  const auto probs = (*sampler)->Probabilities(logits, {});
  if (!probs.ok()) return false;  // all NaN/-inf: nothing is drawn
  int64_t finite = 0, pos_inf = 0;
  for (float l : logits) {
    finite += !std::isnan(l) && l != -kInf;
    pos_inf += l == kInf;
  }
  const int64_t n = pos_inf > 0 ? pos_inf : finite;
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  if ((k.top_k > 0 && k.top_k < n) || k.top_p < 1.0f) {
    auto value = [&](int32_t i) {
      const float l = logits[i];
      if (std::isnan(l)) return -kInf;
      return pos_inf > 0 ? (l == kInf ? 0.0f : -kInf) : l;
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return value(a) > value(b); });
  }
  double cum = 0.0;
  for (int32_t i : order) {
    if ((*probs)[i] == 0.0f) continue;
    cum += (*probs)[i];
    if (std::fabs(cum - u) < kBoundaryMargin) return true;
  }
  return false;
}

struct Expected {
  int32_t token;
  float logprob;
};

// Samples every row with `run` and with the CPU Sampler, and compares.
// `run` samples with host arrays (it copies them to a device and back when it
// must) and returns whether the launch succeeded.
inline void CheckRows(const std::vector<float>& logits, int32_t vocab, const std::vector<RowKnobs>& knobs,
                      uint64_t seed_base, const std::function<bool(const SampleParams&)>& run) {
  const int64_t rows = static_cast<int64_t>(knobs.size());
  ASSERT_EQ(logits.size(), static_cast<size_t>(rows * vocab));
  std::vector<float> temperature(rows), top_p(rows), min_p(rows);
  std::vector<int32_t> top_k(rows);
  std::vector<double> u(rows);
  std::vector<Expected> want(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const RowKnobs& k = knobs[r];
    temperature[r] = k.temperature;
    top_k[r] = k.top_k;
    top_p[r] = k.top_p;
    min_p[r] = k.min_p;
    const std::vector<float> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
    uint64_t seed = seed_base + 7919 * r;
    int reseeds = 0;
    while (k.temperature != 0.0f && NearBoundary(row, k, FirstU(seed))) {
      ++seed;
      ASSERT_LT(++reseeds, 20) << "row " << r << " keeps landing on a CDF boundary";
    }
    u[r] = k.temperature == 0.0f ? 0.5 : FirstU(seed);
    auto sampler = Sampler::Create(ToParams(k, seed));
    ASSERT_TRUE(sampler.ok());
    auto res = (*sampler)->Sample(row, {});
    if (res.ok()) {
      want[r] = Expected{res->token, res->logprob};
    } else {
      ASSERT_EQ(res.status().code(), absl::StatusCode::kInternal) << res.status();
      want[r] = Expected{-1, kNaN};
    }
  }
  std::vector<int32_t> tokens(rows, -7);
  std::vector<float> logprobs(rows, kNaN);
  SampleParams p{logits.data(), rows, vocab, vocab, temperature.data(), top_k.data(), top_p.data(),
                 min_p.data(), u.data(), tokens.data(), logprobs.data()};
  ASSERT_TRUE(run(p));
  for (int64_t r = 0; r < rows; ++r) {
    const RowKnobs& k = knobs[r];
    SCOPED_TRACE(::testing::Message() << "row " << r << " T=" << k.temperature << " k=" << k.top_k
                                      << " p=" << k.top_p << " min_p=" << k.min_p << " u=" << u[r]);
    EXPECT_EQ(tokens[r], want[r].token);
    if (want[r].token < 0) {
      EXPECT_TRUE(std::isnan(logprobs[r]));
    } else {
      EXPECT_NEAR(logprobs[r], want[r].logprob, 1e-4);
    }
  }
}

// Each knob set `times` times in a row (different logits and u per copy), so a
// filter that is off by one token changes some draw.
inline std::vector<RowKnobs> Repeat(const std::vector<RowKnobs>& knobs, int times) {
  std::vector<RowKnobs> out;
  for (int t = 0; t < times; ++t) out.insert(out.end(), knobs.begin(), knobs.end());
  return out;
}

inline std::vector<float> RandomLogits(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace strata::cuda::sample_test
