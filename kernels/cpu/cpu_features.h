// Run-time CPU feature detection for kernel dispatch.
#pragma once

#include <optional>
#include <string_view>

namespace strata {

enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The best level this CPU and OS support (AVX-512 means F+BW+VL+DQ+VNNI;
// AVX2 means AVX2+FMA+F16C+BMI2). The environment variable
// STRATA_SIMD=scalar|avx2|avx512 caps it (for tests and benchmarks of the
// slower paths); an unknown value is ignored. Read once per process (cached),
// thread-safe.
SimdLevel DetectedSimdLevel();
std::string_view SimdLevelName(SimdLevel level);

// What the hardware supports, ignoring STRATA_SIMD (cached, thread-safe).
SimdLevel HardwareSimdLevel();

// "scalar" | "avx2" | "avx512" -> level; nullopt otherwise.
std::optional<SimdLevel> ParseSimdLevel(std::string_view name);

// min(hardware, parsed cap); `cap` may be null or unparsable (then hardware).
// DetectedSimdLevel() == CapSimdLevel(HardwareSimdLevel(), getenv("STRATA_SIMD")).
SimdLevel CapSimdLevel(SimdLevel hardware, const char* cap);

}  // namespace strata
