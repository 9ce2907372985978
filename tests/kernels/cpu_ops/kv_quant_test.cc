// Quantised KV rows (kernels/cpu/kv_quant.h): the E4M3 codec against an
// independent float64 decoding of the OCP spec and brute-force nearest-even
// rounding, against ml_dtypes.float8_e4m3fn (Python, when the project venv is
// there), the per-row FP8 / INT8 quantisers' error bounds, and the BF16 KV
// encoder against a bit-exact round-to-nearest-even reference.
#include "kernels/cpu/kv_quant.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/float16.h"

namespace strata {
namespace {

// OCP OFP8 E4M3 (v1.0, table 1), written from the spec in float64.
double SpecE4M3(int code) {
  const int s = (code >> 7) & 1, e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
  return s ? -mag : mag;
}

// Nearest finite E4M3 code by exhaustive search, ties to the even code,
// saturating beyond 448; NaN -> 0x7F with the sign.
int SpecEncode(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFF : 0x7F;
  const double a = std::fabs(static_cast<double>(x));
  int best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int c = 0; c < 0x7F; ++c) {
    const double err = std::fabs(SpecE4M3(c) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  if (a >= 448.0) best = 0x7E;
  return (std::signbit(x) ? 0x80 : 0) | best;
}

TEST(E4M3, DecodeMatchesSpecForAll256Codes) {
  for (int c = 0; c < 256; ++c) {
    const double want = SpecE4M3(c);
    const float got = E4M3ToF32(static_cast<uint8_t>(c));
    const float tab = E4M3Table()[c];
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got) && std::isnan(tab)) << c;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << c;
      EXPECT_EQ(static_cast<double>(tab), want) << c;
      EXPECT_EQ(std::signbit(got), (c & 0x80) != 0) << c;
    }
  }
  EXPECT_EQ(E4M3ToF32(0x7E), 448.0f);
  EXPECT_EQ(E4M3ToF32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(E4M3ToF32(0x08), std::ldexp(1.0f, -6));  // smallest normal
}

TEST(E4M3, EncodeRoundTripsEveryCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    EXPECT_EQ(F32ToE4M3(E4M3ToF32(static_cast<uint8_t>(c))), c) << c;
  }
}

TEST(E4M3, EncodeRoundsToNearestEvenAndSaturates) {
  // Midpoints between consecutive codes, and one f32 ulp either side.
  for (int c = 0; c < 0x7E; ++c) {
    const double mid = (SpecE4M3(c) + SpecE4M3(c + 1)) / 2;  // exact in f32
    const float m = static_cast<float>(mid);
    ASSERT_EQ(static_cast<double>(m), mid);
    const int even = (c & 1) ? c + 1 : c;
    EXPECT_EQ(F32ToE4M3(m), even) << "midpoint above code " << c;
    EXPECT_EQ(F32ToE4M3(-m), 0x80 | even) << c;
    EXPECT_EQ(F32ToE4M3(std::nextafter(m, 0.0f)), c) << c;
    EXPECT_EQ(F32ToE4M3(std::nextafter(m, 1e9f)), c + 1) << c;
  }
  EXPECT_EQ(F32ToE4M3(0.0f), 0x00);
  EXPECT_EQ(F32ToE4M3(-0.0f), 0x80);
  EXPECT_EQ(F32ToE4M3(std::ldexp(1.0f, -10)), 0x00);      // half the smallest subnormal: tie to 0
  EXPECT_EQ(F32ToE4M3(3 * std::ldexp(1.0f, -10)), 0x02);  // 1.5 units: tie to 2
  EXPECT_EQ(F32ToE4M3(1e-30f), 0x00);
  EXPECT_EQ(F32ToE4M3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(F32ToE4M3(448.0f), 0x7E);
  EXPECT_EQ(F32ToE4M3(463.9f), 0x7E);
  EXPECT_EQ(F32ToE4M3(464.0f), 0x7E);  // would round to 480 (NaN code): saturates
  EXPECT_EQ(F32ToE4M3(1e6f), 0x7E);
  EXPECT_EQ(F32ToE4M3(-1e6f), 0xFE);
  EXPECT_EQ(F32ToE4M3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(F32ToE4M3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(F32ToE4M3(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(F32ToE4M3(-std::numeric_limits<float>::quiet_NaN()), 0xFF);
}

std::vector<float> TestValues() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-500.0f, 500.0f);
  std::uniform_real_distribution<float> lg(-14.0f, 9.5f);
  std::vector<float> v;
  for (int i = 0; i < 20000; ++i) v.push_back(u(rng));
  for (int i = 0; i < 20000; ++i) v.push_back((i & 1 ? -1 : 1) * std::exp2(lg(rng)));  // subnormals to max
  for (int c = 0; c < 0x7E; ++c) {  // midpoints
    v.push_back(static_cast<float>((SpecE4M3(c) + SpecE4M3(c + 1)) / 2));
  }
  v.push_back(0.0f);
  v.push_back(-0.0f);
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  return v;
}

TEST(E4M3, EncodeMatchesExhaustiveNearestEven) {
  for (float x : TestValues()) EXPECT_EQ(F32ToE4M3(x), SpecEncode(x)) << x;
}

TEST(E4M3, MatchesMlDtypes) {
  if (access(STRATA_PYTHON, X_OK) != 0) GTEST_SKIP() << "no reference Python at " << STRATA_PYTHON;
  char tmpl[] = "/tmp/strata_e4m3_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::vector<float> v = TestValues();
  {
    std::ofstream f(dir + "/in.f32", std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  }
  const std::string cmd = std::string("timeout 60 ") + STRATA_PYTHON + " " + STRATA_SOURCE_DIR +
                          "/tests/kernels/cpu_ops/e4m3_reference.py " + dir + "/in.f32 " + dir + "/codes.u8 " +
                          dir + "/table.f32";
  const int rc = std::system(cmd.c_str());
  auto read = [&](const std::string& name) {
    std::ifstream f(dir + "/" + name, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), {});
  };
  const std::vector<char> codes = read("codes.u8"), table = read("table.f32");
  std::system(("rm -rf " + dir).c_str());
  if (rc != 0) GTEST_SKIP() << "e4m3_reference.py failed (ml_dtypes missing?), rc " << rc;
  ASSERT_EQ(codes.size(), v.size());
  ASSERT_EQ(table.size(), 256u * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(F32ToE4M3(v[i]), static_cast<uint8_t>(codes[i])) << v[i];
  }
  for (int c = 0; c < 256; ++c) {
    float want;
    std::memcpy(&want, table.data() + 4 * c, 4);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(E4M3ToF32(static_cast<uint8_t>(c)))) << c;
    } else {
      EXPECT_EQ(E4M3ToF32(static_cast<uint8_t>(c)), want) << c;
    }
  }
}

std::vector<float> RandomRow(std::mt19937& rng, int n, float sigma) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

TEST(KvQuantRow, Fp8ErrorBound) {
  std::mt19937 rng(3);
  for (float sigma : {1e-3f, 1.0f, 50.0f}) {
    for (int n : {1, 7, 64, 128}) {
      std::vector<float> x = RandomRow(rng, n, sigma);
      if (n > 3) x[2] = 1e-6f * sigma;  // a subnormal code
      std::vector<uint8_t> q(n);
      const float scale = QuantizeRowFp8(x.data(), n, q.data());
      double amax = 0;
      for (float v : x) amax = std::max(amax, std::fabs(static_cast<double>(v)));
      EXPECT_NEAR(scale, amax / 448, amax / 448 * 1e-6);
      std::vector<float> y(n);
      DequantizeRowFp8(q.data(), scale, n, y.data());
      for (int i = 0; i < n; ++i) {
        // Normals: half a unit in the 4th bit (2^-4 relative); subnormals: 2^-10 * scale.
        const double bound = std::max(std::fabs(x[i]) / 16.0, std::ldexp(static_cast<double>(scale), -10)) * 1.0001;
        EXPECT_LE(std::fabs(static_cast<double>(y[i]) - x[i]), bound) << "sigma " << sigma << " i " << i;
        EXPECT_EQ(y[i], scale * static_cast<float>(SpecE4M3(q[i])));
        if (std::fabs(x[i]) == amax) EXPECT_EQ(q[i] & 0x7F, 0x7E);  // the max maps to 448
      }
    }
  }
}

TEST(KvQuantRow, Int8ErrorBound) {
  std::mt19937 rng(4);
  for (float sigma : {1e-3f, 1.0f, 50.0f}) {
    for (int n : {1, 7, 64, 128}) {
      const std::vector<float> x = RandomRow(rng, n, sigma);
      std::vector<int8_t> q(n);
      const float scale = QuantizeRowInt8(x.data(), n, q.data());
      double amax = 0;
      for (float v : x) amax = std::max(amax, std::fabs(static_cast<double>(v)));
      EXPECT_NEAR(scale, amax / 127, amax / 127 * 1e-6);
      std::vector<float> y(n);
      DequantizeRowInt8(q.data(), scale, n, y.data());
      for (int i = 0; i < n; ++i) {
        EXPECT_LE(std::fabs(static_cast<double>(y[i]) - x[i]), scale / 2.0 * (1 + 1e-6)) << i;
        EXPECT_GE(q[i], -127);
        EXPECT_LE(q[i], 127);
        if (std::fabs(x[i]) == amax) EXPECT_EQ(std::abs(q[i]), 127);
      }
    }
  }
  // Ties go to even: 0.5 and 2.5 units.
  const float x[3] = {127.0f, 0.5f, 2.5f};
  int8_t q[3];
  EXPECT_EQ(QuantizeRowInt8(x, 3, q), 1.0f);
  EXPECT_EQ(q[1], 0);
  EXPECT_EQ(q[2], 2);
}

TEST(KvQuantRow, ZeroAndNonFiniteRows) {
  const float zeros[4] = {0, -0.0f, 0, 0};
  uint8_t q8[4];
  int8_t qi[4];
  EXPECT_EQ(QuantizeRowFp8(zeros, 4, q8), 0.0f);
  EXPECT_EQ(QuantizeRowInt8(zeros, 4, qi), 0.0f);
  float y[4];
  DequantizeRowFp8(q8, 0.0f, 4, y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float bad : {nan, inf, -inf}) {
    const float x[4] = {1.0f, bad, -2.0f, 0.5f};
    EXPECT_TRUE(std::isnan(QuantizeRowFp8(x, 4, q8))) << bad;
    EXPECT_EQ(q8[1], 0x7F);
    EXPECT_TRUE(std::isnan(QuantizeRowInt8(x, 4, qi))) << bad;
    DequantizeRowInt8(qi, QuantizeRowInt8(x, 4, qi), 4, y);
    for (float v : y) EXPECT_TRUE(std::isnan(v));  // NaN in -> NaN out, like an f16 cache
  }
}

// ---- BF16 (KvDtype::kBF16) ----

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Bit-exact round-to-nearest-even of the top 16 bits, for non-NaN inputs.
uint16_t RefBF16(uint32_t bits) { return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16); }

bool IsNaNBits(uint32_t b) { return (b & 0x7FFFFFFFu) > 0x7F800000u; }

// Checks one input: non-NaN = the reference; NaN = a quiet NaN of the same sign.
void CheckBF16(uint32_t bits) {
  const uint16_t got = F32ToBF16(FromBits(bits));
  if (IsNaNBits(bits)) {
    ASSERT_TRUE(std::isnan(BF16ToF32(got))) << std::hex << bits << " -> " << got;
    ASSERT_EQ(got & 0x0040, 0x0040) << "not quiet: " << std::hex << bits << " -> " << got;
    ASSERT_EQ(got >> 15, bits >> 31) << std::hex << bits;
  } else {
    ASSERT_EQ(got, RefBF16(bits)) << std::hex << bits;
  }
}

TEST(BF16, TiesZerosInfinitiesNaNsSubnormals) {
  struct C {
    uint32_t in;
    uint16_t want;
  };
  const C cases[] = {
      {0x3F800000, 0x3F80},  // 1.0 exact
      {0x3F808000, 0x3F80},  // 1 + 2^-8: tie, lower code even -> down
      {0x3F818000, 0x3F82},  // tie, lower code odd -> up
      {0x3F808001, 0x3F81},  // just above the tie
      {0x3F807FFF, 0x3F80},  // just below the tie
      {0xBF818000, 0xBF82},  // negative tie, odd -> away (magnitude up)
      {0x3FFF8000, 0x4000},  // tie carrying into the exponent
      {0x00000000, 0x0000},  // +0
      {0x80000000, 0x8000},  // -0
      {0x7F800000, 0x7F80},  // +inf
      {0xFF800000, 0xFF80},  // -inf
      {0x7F7FFFFF, 0x7F80},  // max finite f32 rounds to inf
      {0x7F7F7FFF, 0x7F7F},  // largest value that stays finite
      {0x00000001, 0x0000},  // smallest subnormal -> +0
      {0x00008000, 0x0000},  // subnormal tie, even -> down
      {0x00018000, 0x0002},  // subnormal tie, odd -> up
      {0x00010000, 0x0001},  // bf16 subnormal, exact
      {0x80018000, 0x8002},  // negative subnormal tie
      {0x007FFFFF, 0x0080},  // largest subnormal rounds up to the smallest normal
  };
  for (const C& c : cases) {
    EXPECT_EQ(F32ToBF16(FromBits(c.in)), c.want) << std::hex << c.in;
    EXPECT_EQ(RefBF16(c.in), c.want) << std::hex << c.in;
  }
  // NaNs stay (quiet) NaNs, including the ones the plain rounding formula
  // would turn into an infinity (0x7F800001) or a sign flip (0x7FFFFFFF).
  for (uint32_t nan : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
    CheckBF16(nan);
  }
  EXPECT_EQ(F32ToBF16(FromBits(0x7FC00000u)), 0x7FC0);
  EXPECT_EQ(F32ToBF16(FromBits(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(F32ToBF16(FromBits(0x7F800001u)), 0x7FC0);
}

// Every bf16 code decodes and re-encodes to itself (NaN codes to a NaN).
TEST(BF16, EveryCodeRoundTrips) {
  for (uint32_t code = 0; code < 0x10000; ++code) {
    const float f = BF16ToF32(static_cast<uint16_t>(code));
    ASSERT_EQ(Bits(f), code << 16);
    if (IsNaNBits(code << 16)) {
      ASSERT_TRUE(std::isnan(BF16ToF32(F32ToBF16(f)))) << std::hex << code;
    } else {
      ASSERT_EQ(F32ToBF16(f), code) << std::hex << code;
    }
  }
}

// A sweep of the f32 bit patterns: every high half with low halves at and
// around the tie and the ends, plus random patterns; relative error <= 2^-8
// (unit roundoff of 8 significant bits) for normal results.
TEST(BF16, MatchesBitExactReference) {
  for (uint32_t hi = 0; hi < 0x10000; ++hi) {
    for (uint32_t lo : {0x0000u, 0x0001u, 0x7FFEu, 0x7FFFu, 0x8000u, 0x8001u, 0xC000u, 0xFFFFu}) {
      CheckBF16(hi << 16 | lo);
    }
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 1000000; ++i) CheckBF16(static_cast<uint32_t>(rng()));
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = nd(rng);
    const double y = BF16ToF32(F32ToBF16(x));
    ASSERT_LE(std::fabs(y - x), std::ldexp(std::fabs(static_cast<double>(x)), -8)) << x;
  }
}

// kFp8E4M3Unscaled: element-wise E4M3 with an implicit scale of 1, so the
// value read back is exactly the E4M3 rounding of the raw value (the spec
// encoder above), saturating at +-448; NaN stays NaN element-wise.
TEST(KvQuantRow, Fp8UnscaledIsPlainE4M3) {
  std::mt19937 rng(5);
  for (float sigma : {1e-3f, 1.0f, 8.0f, 300.0f}) {
    std::vector<float> x = RandomRow(rng, 128, sigma);
    x[0] = 448.0f; x[1] = -448.0f; x[2] = 449.0f; x[3] = -1e6f; x[4] = 464.0f; x[5] = 1e-6f;
    x[6] = std::numeric_limits<float>::infinity(); x[7] = -0.0f;
    std::vector<uint8_t> q(x.size());
    EncodeRowE4M3(x.data(), static_cast<int64_t>(x.size()), q.data());
    std::vector<float> y(x.size());
    DequantizeRowFp8(q.data(), 1.0f, static_cast<int64_t>(x.size()), y.data());
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(q[i], SpecEncode(x[i])) << x[i];
      EXPECT_EQ(y[i], static_cast<float>(SpecE4M3(SpecEncode(x[i])))) << x[i];
      if (std::fabs(x[i]) >= 448.0f) {
        EXPECT_EQ(std::fabs(y[i]), 448.0f) << x[i];  // saturates
      }
    }
    EXPECT_TRUE(std::signbit(y[7]));
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float x[4] = {1.0f, nan, -2.0f, 0.5f};
  uint8_t q[4];
  float y[4];
  EncodeRowE4M3(x, 4, q);
  EXPECT_EQ(q[1] & 0x7F, 0x7F);
  DequantizeRowFp8(q, 1.0f, 4, y);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_TRUE(std::isnan(y[1]));  // only the NaN element
  EXPECT_EQ(y[2], -2.0f);
  EXPECT_EQ(y[3], 0.5f);
}

}  // namespace
}  // namespace strata
