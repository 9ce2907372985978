#include "kernels/cpu/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>

namespace strata {
namespace {

uint64_t ReadXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

SimdLevel DetectHardware() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SimdLevel::kScalar;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  const bool avx = c & (1u << 28);
  if (!osxsave || !avx) return SimdLevel::kScalar;
  const uint64_t xcr0 = ReadXcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;
  if (!os_ymm || __get_cpuid_max(0, nullptr) < 7) return SimdLevel::kScalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool bmi2 = b & (1u << 8);
  const bool avx512f = b & (1u << 16);
  const bool avx512dq = b & (1u << 17);
  const bool avx512bw = b & (1u << 30);
  const bool avx512vl = b & (1u << 31);
  const bool avx512vnni = c & (1u << 11);
  if (!(avx2 && fma && f16c && bmi2)) return SimdLevel::kScalar;
  if (os_zmm && avx512f && avx512dq && avx512bw && avx512vl && avx512vnni) return SimdLevel::kAvx512;
  return SimdLevel::kAvx2;
#else
  return SimdLevel::kScalar;
#endif
}

}  // namespace

SimdLevel HardwareSimdLevel() {
  static const SimdLevel level = DetectHardware();
  return level;
}

std::optional<SimdLevel> ParseSimdLevel(std::string_view name) {
  if (name == "scalar") return SimdLevel::kScalar;
  if (name == "avx2") return SimdLevel::kAvx2;
  if (name == "avx512") return SimdLevel::kAvx512;
  return std::nullopt;
}

SimdLevel CapSimdLevel(SimdLevel hardware, const char* cap) {
  if (cap == nullptr) return hardware;
  const std::optional<SimdLevel> parsed = ParseSimdLevel(cap);
  if (!parsed.has_value()) return hardware;
  return static_cast<int>(*parsed) < static_cast<int>(hardware) ? *parsed : hardware;
}

SimdLevel DetectedSimdLevel() {
  static const SimdLevel level = CapSimdLevel(HardwareSimdLevel(), std::getenv("STRATA_SIMD"));
  return level;
}

std::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace strata
