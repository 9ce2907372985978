#include "kernels/cpu/cpu_features.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(CpuFeatures, ParseNames) {
  EXPECT_EQ(ParseSimdLevel("scalar"), SimdLevel::kScalar);
  EXPECT_EQ(ParseSimdLevel("avx2"), SimdLevel::kAvx2);
  EXPECT_EQ(ParseSimdLevel("avx512"), SimdLevel::kAvx512);
  EXPECT_EQ(ParseSimdLevel("AVX2"), std::nullopt);
  EXPECT_EQ(ParseSimdLevel(""), std::nullopt);
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    EXPECT_EQ(ParseSimdLevel(SimdLevelName(l)), l);
  }
}

TEST(CpuFeatures, CapLowersNeverRaises) {
  EXPECT_EQ(CapSimdLevel(SimdLevel::kAvx512, "scalar"), SimdLevel::kScalar);
  EXPECT_EQ(CapSimdLevel(SimdLevel::kAvx512, "avx2"), SimdLevel::kAvx2);
  EXPECT_EQ(CapSimdLevel(SimdLevel::kAvx512, "avx512"), SimdLevel::kAvx512);
  EXPECT_EQ(CapSimdLevel(SimdLevel::kAvx2, "avx512"), SimdLevel::kAvx2);
  EXPECT_EQ(CapSimdLevel(SimdLevel::kScalar, "avx2"), SimdLevel::kScalar);
  EXPECT_EQ(CapSimdLevel(SimdLevel::kAvx2, nullptr), SimdLevel::kAvx2);
  EXPECT_EQ(CapSimdLevel(SimdLevel::kAvx512, "bogus"), SimdLevel::kAvx512);
}

// Also run by ctest with STRATA_SIMD=scalar and =avx2 (see CMakeLists.txt).
TEST(CpuFeatures, DetectedHonorsEnvironment) {
  const char* env = std::getenv("STRATA_SIMD");
  EXPECT_EQ(DetectedSimdLevel(), CapSimdLevel(HardwareSimdLevel(), env));
  EXPECT_LE(static_cast<int>(DetectedSimdLevel()), static_cast<int>(HardwareSimdLevel()));
  if (env != nullptr && std::string(env) == "scalar") {
    EXPECT_EQ(DetectedSimdLevel(), SimdLevel::kScalar);
  }
  if (env != nullptr && std::string(env) == "avx2") {
    EXPECT_NE(DetectedSimdLevel(), SimdLevel::kAvx512);
  }
}

TEST(CpuFeatures, HardwareReportsSomething) {
  // Informational: which paths this machine's test run covers.
  std::printf("hardware SIMD level: %s, detected: %s\n",
              std::string(SimdLevelName(HardwareSimdLevel())).c_str(),
              std::string(SimdLevelName(DetectedSimdLevel())).c_str());
}

}  // namespace
}  // namespace strata
