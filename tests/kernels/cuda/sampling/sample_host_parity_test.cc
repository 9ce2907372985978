// Parity of the sampling kernel (kernels/cuda/sampling/), run on the host harness,
// against the CPU Sampler (worker/sampler.h) with the same u: each row's Sampler is
// seeded, and the u it draws is computed from an identically seeded std::mt19937_64
// ((next() >> 11) * 2^-53, one draw per non-greedy Sample call).
// Tolerances:
//   token:   exact. A row whose target u lies within 1e-6 of a boundary of the CPU's
//            CDF (in its draw order) is re-seeded until it does not, since the sums
//            are rounded in a different order (not by loosening the check).
//   logprob: 1e-4 absolute (double sums in another order; f32 result).
// Vocab sizes are odd (1001 runs 256 threads, 32003 runs 1024); outputs start
// poisoned (token -7, logprob NaN).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/sampling/host/host_ops.h"
#include "tests/kernels/cuda/sampling/sample_test_util.h"
#include "worker/sampler.h"

namespace strata::cuda {
namespace {

using namespace sample_test;  // NOLINT: test helpers

bool RunOnHarness(const SampleParams& p) { return HostRunSample(p).ok(); }


TEST(CudaSampleHostParity, GreedyIsArgmaxLowestIdOnTies) {
  const int32_t vocab = 1001;
  auto logits = RandomLogits(4 * vocab, 1, 3.0f);
  logits[0 * vocab + 500] = 50.0f;  // row 0: a clear winner
  logits[1 * vocab + 700] = 60.0f;  // row 1: a tie, the lower id wins
  logits[1 * vocab + 300] = 60.0f;
  logits[1 * vocab + 10] = kNaN;
  logits[2 * vocab + 3] = kInf;     // row 2: the +inf tokens win, lowest id first
  logits[2 * vocab + 1] = kInf;
  for (int32_t i = 0; i < vocab; i += 3) logits[3 * vocab + i] = kNaN;  // row 3: NaNs
  CheckRows(logits, vocab, std::vector<RowKnobs>(4, RowKnobs{0.0f}), 10, RunOnHarness);
}

TEST(CudaSampleHostParity, GreedyLargeVocab) {
  const int32_t vocab = 32003;
  const auto logits = RandomLogits(2 * vocab, 2, 2.0f);
  CheckRows(logits, vocab, std::vector<RowKnobs>(2, RowKnobs{0.0f}), 20, RunOnHarness);
}

TEST(CudaSampleHostParity, TopKOnly) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs;
  for (int32_t k : {1, 2, 5, 50, 1000, 1001, 5000}) knobs.push_back(RowKnobs{1.0f, k});
  knobs = Repeat(knobs, 4);
  CheckRows(RandomLogits(knobs.size() * vocab, 3, 2.0f), vocab, knobs, 30, RunOnHarness);
}

TEST(CudaSampleHostParity, TopPOnly) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs;
  for (float p : {0.05f, 0.3f, 0.5f, 0.8f, 0.9f, 0.95f, 0.999f}) knobs.push_back(RowKnobs{1.0f, 0, p});
  knobs = Repeat(knobs, 4);
  CheckRows(RandomLogits(knobs.size() * vocab, 4, 2.0f), vocab, knobs, 40, RunOnHarness);
}

TEST(CudaSampleHostParity, MinPOnly) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs;
  for (float m : {0.001f, 0.01f, 0.05f, 0.1f, 0.5f, 1.0f}) knobs.push_back(RowKnobs{1.0f, 0, 1.0f, m});
  knobs = Repeat(knobs, 4);
  CheckRows(RandomLogits(knobs.size() * vocab, 5, 2.0f), vocab, knobs, 50, RunOnHarness);
}

TEST(CudaSampleHostParity, TemperatureOnly) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs;
  for (float t : {0.05f, 0.3f, 0.7f, 1.0f, 1.5f, 4.0f}) knobs.push_back(RowKnobs{t});
  knobs = Repeat(knobs, 4);
  CheckRows(RandomLogits(knobs.size() * vocab, 6, 1.0f), vocab, knobs, 60, RunOnHarness);
}

TEST(CudaSampleHostParity, AllCombined) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs = {
      {0.7f, 40, 0.9f, 0.05f}, {1.3f, 100, 0.95f, 0.01f}, {0.5f, 10, 0.5f, 0.2f},
      {1.0f, 500, 0.7f, 0.0f}, {0.8f, 0, 0.9f, 0.02f},    {2.0f, 3, 1.0f, 0.3f},
  };
  knobs = Repeat(knobs, 4);
  CheckRows(RandomLogits(knobs.size() * vocab, 7, 1.5f), vocab, knobs, 70, RunOnHarness);
}

TEST(CudaSampleHostParity, LargeVocabCombined) {
  const int32_t vocab = 32003;
  std::vector<RowKnobs> knobs = {{1.0f}, {0.8f, 50, 0.95f, 0.0f}, {1.2f, 0, 0.9f, 0.01f}};
  CheckRows(RandomLogits(knobs.size() * vocab, 8, 2.0f), vocab, knobs, 80, RunOnHarness);
}

TEST(CudaSampleHostParity, FlatAndWideDistributions) {
  // Flat logits put the top_k / top_p / draw crossings mid-way down the ranks, wide
  // ones spread the values over many exponents: both make the first radix level's
  // bin choice matter (with peaked logits the top bin nearly always wins).
  const int32_t vocab = 1001;
  const std::vector<RowKnobs> mix = {{1.0f, 300}, {1.0f, 600}, {4.0f, 0, 0.5f}, {1.0f, 0, 0.7f},
                                     {2.0f, 0, 0.9f}, {3.0f, 700, 0.8f}};
  const auto knobs = Repeat(mix, 3);
  for (float scale : {0.3f, 12.0f}) {
    SCOPED_TRACE(scale);
    CheckRows(RandomLogits(knobs.size() * vocab, 15, scale), vocab, knobs, 150, RunOnHarness);
  }
}

TEST(CudaSampleHostParity, TiesResolveByLowestId) {
  // Logits on a coarse grid: top_k and top_p cut through runs of equal values.
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs = {{1.0f, 7}, {1.0f, 30}, {1.0f, 0, 0.4f}, {0.9f, 25, 0.8f, 0.1f},
                                 {1.0f, 0, 1.0f, 0.3f}, {1.0f}};
  knobs = Repeat(knobs, 4);
  auto logits = RandomLogits(knobs.size() * vocab, 9, 1.5f);
  for (float& l : logits) l = std::round(l);
  for (int64_t i = 0; i < vocab; ++i) logits[i] = i % 2 ? 0.0f : -0.0f;  // row 0: +0 and -0 tie
  logits[17] = 1.0f;
  CheckRows(logits, vocab, knobs, 90, RunOnHarness);
}

TEST(CudaSampleHostParity, NaNAndInfinities) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs = {{1.0f}, {1.0f, 5}, {0.7f, 0, 0.9f}, {1.0f}, {1.0f, 2, 0.5f}, {0.0f},
                                 {1.0f, 3}};
  auto logits = RandomLogits(knobs.size() * vocab, 10, 2.0f);
  std::mt19937 rng(11);
  for (int64_t r = 0; r < 3; ++r) {  // rows 0-2: a third NaN, a third -inf
    for (int32_t i = 0; i < vocab; ++i) {
      const uint32_t c = rng() % 3;
      if (c == 0) logits[r * vocab + i] = kNaN;
      if (c == 1) logits[r * vocab + i] = -kInf;
    }
  }
  for (int64_t r : {3, 4, 5}) {  // rows 3-5: several +inf (uniform over them)
    for (int32_t i : {5, 99, 100, 640, 1000}) logits[r * vocab + i] = kInf;
    logits[r * vocab + 6] = kNaN;
  }
  for (int32_t i = 0; i < vocab; ++i) logits[6 * vocab + i] = i == 777 ? 1.0f : -kInf;  // one token
  CheckRows(logits, vocab, knobs, 100, RunOnHarness);
}

TEST(CudaSampleHostParity, AllNegInfRowGivesMinusOne) {
  const int32_t vocab = 1001;
  std::vector<RowKnobs> knobs = {{1.0f}, {0.0f}, {1.0f}};
  auto logits = RandomLogits(knobs.size() * vocab, 12, 1.0f);
  for (int32_t i = 0; i < vocab; ++i) {
    logits[i] = i % 2 ? -kInf : kNaN;
    logits[vocab + i] = -kInf;
  }
  CheckRows(logits, vocab, knobs, 110, RunOnHarness);  // rows 0, 1: -1 / NaN; row 2 samples normally
}

TEST(CudaSampleHostParity, NullKnobArraysMeanOff) {
  const int32_t vocab = 1001;
  const auto logits = RandomLogits(2 * vocab, 13, 2.0f);
  std::vector<double> u = {FirstU(5), FirstU(6)};
  std::vector<int32_t> tokens(2, -7);
  std::vector<float> logprobs(2, kNaN);
  SampleParams p{logits.data(), 2, vocab, vocab};
  p.u = u.data();
  p.tokens = tokens.data();
  p.logprobs = logprobs.data();
  ASSERT_TRUE(HostRunSample(p).ok());
  for (int r = 0; r < 2; ++r) {
    const std::vector<float> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
    if (NearBoundary(row, RowKnobs{}, u[r])) continue;
    auto sampler = Sampler::Create(ToParams(RowKnobs{}, 5 + r));
    auto res = (*sampler)->Sample(row, {});
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(tokens[r], res->token);
    EXPECT_NEAR(logprobs[r], res->logprob, 1e-4);
  }
}

TEST(CudaSampleHostParity, RowStrideIsHonoured) {
  const int32_t vocab = 1001;
  const int64_t stride = 1030;
  auto logits = RandomLogits(3 * stride, 14, 2.0f);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t i = vocab; i < stride; ++i) logits[r * stride + i] = 1000.0f;  // must be ignored
  }
  std::vector<int32_t> tokens(3, -7);
  std::vector<float> logprobs(3, kNaN), temperature(3, 0.0f);
  std::vector<double> u(3, 0.5);
  SampleParams p{logits.data(), 3, vocab, stride, temperature.data()};
  p.u = u.data();
  p.tokens = tokens.data();
  p.logprobs = logprobs.data();
  ASSERT_TRUE(HostRunSample(p).ok());
  for (int64_t r = 0; r < 3; ++r) {
    const float* row = logits.data() + r * stride;
    EXPECT_EQ(tokens[r], std::max_element(row, row + vocab) - row);
  }
}

TEST(CudaSampleHostParity, RejectsBadParams) {
  std::vector<float> logits(8, 1.0f);
  std::vector<int32_t> tokens(1);
  std::vector<float> lp(1);
  std::vector<double> u(1, 0.5);
  SampleParams ok{logits.data(), 1, 8, 8};
  ok.u = u.data();
  ok.tokens = tokens.data();
  ok.logprobs = lp.data();
  EXPECT_TRUE(HostRunSample(ok).ok());
  SampleParams bad = ok;
  bad.logits_stride = 7;
  EXPECT_FALSE(HostRunSample(bad).ok());
  bad = ok;
  bad.vocab = 0;
  EXPECT_FALSE(HostRunSample(bad).ok());
  bad = ok;
  bad.u = nullptr;
  EXPECT_FALSE(HostRunSample(bad).ok());
  bad = ok;
  bad.rows = 0;
  bad.logits = nullptr;
  EXPECT_TRUE(HostRunSample(bad).ok());
}

}  // namespace
}  // namespace strata::cuda
