// Parity of the CUDA kernels, run on the host harness, against the CPU reference ops.
// Inputs are random and never zero, sizes are odd, outputs start as NaN so an
// unwritten element fails. Tolerances (per op, why):
//   RMSNorm: 1e-5 relative + 1e-6 absolute (float vs double sum of squares)
//   RoPE:    1e-6 relative + 1e-6 absolute (same double angle, float rotation)
//   SwiGLU:  1e-6 relative + 1e-7 absolute (same formula, libm expf)
//   Embedding: exact (the KV write of every dtype is tested in attention/)
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> RandomNonZero(size_t n, uint32_t seed, float lo = 0.05f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel,
                 float abs, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isfinite(got[i]) &&
                    std::fabs(got[i] - want[i]) <= abs + rel * std::fabs(want[i]);
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CudaHostParity, RmsNormResidualMatchesCpu) {
  for (int64_t cols : {577, 64, 2048 + 3, 1}) {
    const int64_t rows = 7;
    const auto x = RandomNonZero(rows * cols, 1 + cols);
    const auto res0 = RandomNonZero(rows * cols, 2 + cols);
    const auto w = RandomNonZero(cols, 3 + cols, 0.5f, 1.5f);
    // Reference: h = x + residual, then the CPU RMSNorm of h.
    std::vector<float> h(rows * cols), want(rows * cols, kNaN);
    for (size_t i = 0; i < h.size(); ++i) h[i] = x[i] + res0[i];
    ASSERT_TRUE(strata::LaunchRmsNorm({h.data(), w.data(), want.data(), rows, cols, 1e-5f}).ok());

    std::vector<float> res = res0, out(rows * cols, kNaN);
    RmsNormResidualParams p{x.data(), res.data(), w.data(), out.data(), rows, cols, 1e-5f};
    ASSERT_TRUE(HostRunRmsNormResidual(p).ok());
    ExpectClose(out, want, 1e-5f, 1e-6f, "out");
    ExpectClose(res, h, 0, 0, "residual written back");

    // Without a residual, in place (out aliases x): exactly the CPU op.
    std::vector<float> io = x, want2(rows * cols, kNaN);
    ASSERT_TRUE(strata::LaunchRmsNorm({x.data(), w.data(), want2.data(), rows, cols, 1e-5f}).ok());
    RmsNormResidualParams q{io.data(), nullptr, w.data(), io.data(), rows, cols, 1e-5f};
    ASSERT_TRUE(HostRunRmsNormResidual(q).ok());
    ExpectClose(io, want2, 1e-5f, 1e-6f, "in place");
  }
}

TEST(CudaHostParity, RmsNormResidualRejectsBadParams) {
  std::vector<float> a(8, 1.0f), w(8, 1.0f);
  EXPECT_FALSE(HostRunRmsNormResidual({nullptr, nullptr, w.data(), a.data(), 1, 8, 1e-5f}).ok());
  EXPECT_FALSE(HostRunRmsNormResidual({a.data(), a.data(), w.data(), a.data(), 1, 8, 1e-5f}).ok());
  EXPECT_FALSE(HostRunRmsNormResidual({a.data(), nullptr, w.data(), a.data(), 1, 0, 1e-5f}).ok());
  EXPECT_TRUE(HostRunRmsNormResidual({a.data(), nullptr, w.data(), a.data(), 0, 8, 1e-5f}).ok());
}

TEST(CudaHostParity, RopeMatchesCpu) {
  for (bool neox : {false, true}) {
    for (int64_t head_dim : {64, 18, 256}) {
      const int64_t tokens = 7, heads = 5, stride = heads * head_dim + 3;  // padded rows
      const auto x0 = RandomNonZero(tokens * stride, 11 + head_dim + neox);
      std::vector<int32_t> pos(tokens);
      for (int64_t t = 0; t < tokens; ++t) pos[t] = static_cast<int32_t>(t * 613 + 1);
      std::vector<float> inv(head_dim / 2);
      for (size_t i = 0; i < inv.size(); ++i) {
        inv[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / head_dim));
      }
      std::vector<float> want = x0, got = x0;
      ASSERT_TRUE(strata::LaunchRope({want.data(), tokens, heads, head_dim, stride, pos.data(),
                                      inv.data(), neox}).ok());
      ASSERT_TRUE(HostRunRope({got.data(), tokens, heads, head_dim, stride, pos.data(),
                               inv.data(), neox}).ok());
      ExpectClose(got, want, 1e-6f, 1e-6f, neox ? "neox" : "interleaved");
    }
  }
  std::vector<float> x(6, 1.0f), inv(3, 1.0f);
  std::vector<int32_t> pos(1, 0);
  EXPECT_FALSE(HostRunRope({x.data(), 1, 1, 5, 0, pos.data(), inv.data(), false}).ok());
}

TEST(CudaHostParity, SwiGluMatchesCpu) {
  for (int64_t n : {int64_t{1}, int64_t{577}, int64_t{7 * 1537}}) {
    const auto gate = RandomNonZero(n, 21 + n, 0.01f, 8.0f);
    const auto up = RandomNonZero(n, 22 + n);
    std::vector<float> want(n, kNaN), got(n, kNaN);
    ASSERT_TRUE(strata::LaunchSwiGlu({gate.data(), up.data(), want.data(), n}).ok());
    ASSERT_TRUE(HostRunSwiGlu({gate.data(), up.data(), got.data(), n}).ok());
    ExpectClose(got, want, 1e-6f, 1e-7f, "swiglu");
    std::vector<float> io = gate;  // out aliases gate
    ASSERT_TRUE(HostRunSwiGlu({io.data(), up.data(), io.data(), n}).ok());
    ExpectClose(io, want, 1e-6f, 1e-7f, "swiglu in place");
  }
}

TEST(CudaHostParity, EmbeddingCopiesRowsAndCountsBadIds) {
  const int64_t vocab = 53, dim = 577, tokens = 7, stride = dim + 3;
  const auto table = RandomNonZero(vocab * dim, 31);
  std::vector<int32_t> ids = {5, 0, 52, 17, 17, 60, -1};  // the last two are out of range
  std::vector<float> out(tokens * stride, kNaN);
  int bad = 0;
  ASSERT_TRUE(HostRunEmbedding({table.data(), ids.data(), out.data(), tokens, vocab, dim, stride,
                                &bad}).ok());
  EXPECT_EQ(bad, 2);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t d = 0; d < stride; ++d) {
      const float got = out[t * stride + d];
      if (d >= dim || ids[t] < 0 || ids[t] >= vocab) {
        EXPECT_TRUE(std::isnan(got)) << t << " " << d;  // untouched
      } else {
        ASSERT_EQ(got, table[ids[t] * dim + d]) << t << " " << d;
      }
    }
  }
  // Aligned rows with dim % 4 == 0 take the float4 path.
  const int64_t dim4 = 64;
  const auto table4 = RandomNonZero(vocab * dim4, 32);
  std::vector<float> out4(tokens * dim4, kNaN);
  std::vector<int32_t> ids4 = {1, 2, 3, 50, 0, 9, 9};
  ASSERT_TRUE(HostRunEmbedding({table4.data(), ids4.data(), out4.data(), tokens, vocab, dim4, 0,
                                nullptr}).ok());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t d = 0; d < dim4; ++d) ASSERT_EQ(out4[t * dim4 + d], table4[ids4[t] * dim4 + d]);
  }
}

}  // namespace
}  // namespace strata::cuda
