// RMSNorm, RoPE and SwiGLU against double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"

namespace strata {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(RmsNorm, MatchesFormula) {
  const int rows = 3, cols = 37;
  auto x = Random(rows * cols, 1), w = Random(cols, 2);
  std::vector<float> out(rows * cols, NAN);
  ASSERT_TRUE(LaunchRmsNorm({x.data(), w.data(), out.data(), rows, cols, 1e-5f}).ok());
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
    const double s = 1.0 / std::sqrt(ss / cols + 1e-5);
    for (int c = 0; c < cols; ++c) EXPECT_NEAR(out[r * cols + c], x[r * cols + c] * s * w[c], 1e-5);
  }
}

void CheckRope(bool neox) {
  const int tokens = 4, heads = 3, hd = 16;
  auto x = Random(tokens * heads * hd, 3);
  auto orig = x;
  std::vector<int32_t> pos = {0, 5, 17, 1000};
  std::vector<float> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv[i] = std::pow(10000.0f, -2.0f * i / hd);
  ASSERT_TRUE(LaunchRope({x.data(), tokens, heads, hd, 0, pos.data(), inv.data(), neox}).ok());
  for (int t = 0; t < tokens; ++t) {
    for (int h = 0; h < heads; ++h) {
      const float* a = orig.data() + (t * heads + h) * hd;
      const float* b = x.data() + (t * heads + h) * hd;
      for (int i = 0; i < hd / 2; ++i) {
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : 2 * i + 1;
        const double ang = double(pos[t]) * inv[i];
        EXPECT_NEAR(b[i0], a[i0] * std::cos(ang) - a[i1] * std::sin(ang), 2e-5);
        EXPECT_NEAR(b[i1], a[i0] * std::sin(ang) + a[i1] * std::cos(ang), 2e-5);
      }
    }
  }
}

TEST(Rope, InterleavedPairs) { CheckRope(false); }
TEST(Rope, NeoxHalves) { CheckRope(true); }

TEST(SwiGlu, MatchesFormula) {
  auto g = Random(101, 4), u = Random(101, 5);
  std::vector<float> out(101, NAN);
  ASSERT_TRUE(LaunchSwiGlu({g.data(), u.data(), out.data(), 101}).ok());
  for (int i = 0; i < 101; ++i) {
    const double s = g[i] / (1.0 + std::exp(-double(g[i])));
    EXPECT_NEAR(out[i], s * u[i], 1e-5);
  }
}

}  // namespace
}  // namespace strata
