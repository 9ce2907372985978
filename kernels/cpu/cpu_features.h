// Run-time CPU feature detection for kernel dispatch.
#pragma once

#include <string_view>

namespace strata {

enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The best level this CPU and OS support (AVX-512 means F+BW+VL+DQ+VNNI;
// AVX2 means AVX2+FMA+F16C). The environment variable STRATA_SIMD=scalar|avx2
// caps it (for tests and benchmarks of the slower paths).
SimdLevel DetectedSimdLevel();
std::string_view SimdLevelName(SimdLevel level);

}  // namespace strata
