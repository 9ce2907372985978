// The AVX2 activation quantizers must produce the scalar ones' bits exactly
// (so SIMD levels differ only in kernel summation order), including zeros,
// infinities and NaN; and the quantization error bound the matmul tolerances
// rely on must hold.
#include "kernels/cpu/quantize_activations.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_features.h"

namespace strata {
namespace {

std::vector<float> Inputs(int64_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> x(n);
  for (float& v : x) v = u(rng);
  for (int64_t i = 64; i < 96 && i < n; ++i) x[i] = 0.0f;  // an all-zero block
  if (specials && n >= 256) {
    x[5] = std::numeric_limits<float>::infinity();
    x[130] = std::numeric_limits<float>::quiet_NaN();
    x[200] = -0.0f;
    x[201] = 1e-40f;  // subnormal
  }
  return x;
}

template <typename Fn>
std::vector<uint8_t> Quantize(Fn fn, const std::vector<float>& x, int64_t bytes) {
  std::vector<uint8_t> y(bytes, 0xAB);
  fn(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

TEST(QuantizeActivations, Avx2MatchesScalarBitForBit) {
  if (HardwareSimdLevel() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2";
  for (bool specials : {false, true}) {
    for (int64_t n : {256, 768, 1536}) {
      const std::vector<float> x = Inputs(n, static_cast<uint32_t>(n), specials);
      EXPECT_EQ(Quantize(QuantizeRowQ8Act32, x, Q8Act32RowBytes(n)),
                Quantize(QuantizeRowQ8Act32Avx2, x, Q8Act32RowBytes(n)))
          << "Q8Act32 n=" << n << " specials=" << specials;
      EXPECT_EQ(Quantize(QuantizeRowQ8Act32Nib, x, Q8Act32NibRowBytes(n)),
                Quantize(QuantizeRowQ8Act32NibAvx2, x, Q8Act32NibRowBytes(n)))
          << "Q8Act32Nib n=" << n << " specials=" << specials;
      auto k_scalar = [](const float* a, void* b, int64_t m) {
        QuantizeRowQ8ActK(a, static_cast<BlockQ8ActK*>(b), m);
      };
      auto k_avx2 = [](const float* a, void* b, int64_t m) {
        QuantizeRowQ8ActKAvx2(a, static_cast<BlockQ8ActK*>(b), m);
      };
      const int64_t kbytes = n / 256 * static_cast<int64_t>(sizeof(BlockQ8ActK));
      EXPECT_EQ(Quantize(k_scalar, x, kbytes), Quantize(k_avx2, x, kbytes)) << "Q8ActK n=" << n;
    }
  }
}

TEST(QuantizeActivations, ErrorBoundAndSums) {
  const int64_t n = 576;
  const std::vector<float> x = Inputs(n, 3, false);
  std::vector<uint8_t> y(Q8Act32RowBytes(n));
  QuantizeRowQ8Act32(x.data(), y.data(), n);
  const Q8Act32Row v = ViewQ8Act32(y.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    for (int i = 0; i < 32; ++i) {
      const float a = x[b * 32 + i];
      EXPECT_LE(std::fabs(a - v.ds[2 * b] * v.qs[b * 32 + i]), amax / 254 * 1.0001f + 1e-30f);
      sum += v.qs[b * 32 + i];
    }
    EXPECT_EQ(v.ds[2 * b + 1], v.ds[2 * b] * static_cast<float>(sum));
  }
}

}  // namespace
}  // namespace strata
