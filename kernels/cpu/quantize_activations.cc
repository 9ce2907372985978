#include "kernels/cpu/quantize_activations.h"

#include <cmath>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace strata {
namespace {

// Round to nearest (ties to even) without a libm call: cvtss2si under the
// default MXCSR rounding mode (x86-64 baseline).
inline int RoundToInt(float v) {
#if defined(__SSE2__)
  return _mm_cvtss_si32(_mm_set_ss(v));
#else
  return static_cast<int>(std::nearbyint(v));
#endif
}

// Quantizes n values with one scale; returns d and writes q. Sum in *sum.
// Round to nearest keeps |x - d * q| <= d / 2 = amax / 254.
float QuantizeGroup(const float* x, int8_t* q, int n, int* sum) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    amax = (a > amax || a != a) ? a : amax;  // a NaN sticks
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 127.0f / amax : 0.0f;
  int s = 0;
  for (int i = 0; i < n; ++i) {
    const int v = RoundToInt(x[i] * id);
    q[i] = static_cast<int8_t>(v > 127 ? 127 : (v < -127 ? -127 : v));
    s += q[i];
  }
  *sum = s;
  return d;
}

}  // namespace

void QuantizeRowQ8Act32(const float* x, void* y, int64_t n) {
  auto* qs = static_cast<int8_t*>(y);
  auto* ds = reinterpret_cast<float*>(qs + n);
  for (int64_t b = 0; b < n / kQK32; ++b) {
    int sum;
    const float d = QuantizeGroup(x + b * kQK32, qs + b * kQK32, kQK32, &sum);
    ds[2 * b] = d;
    ds[2 * b + 1] = d * static_cast<float>(sum);
  }
}

void QuantizeRowQ8Act32Nib(const float* x, void* y, int64_t n) {
  const int64_t nb = n / kQK32, nb4 = Q8Act32NibBlocks(n);
  auto* qs = static_cast<int8_t*>(y);
  auto* ds = reinterpret_cast<float*>(qs + nb4 * kQK32);
  for (int64_t b = 0; b < nb4; ++b) {
    int8_t q[kQK32] = {};
    int sum = 0;
    const float d = b < nb ? QuantizeGroup(x + b * kQK32, q, kQK32, &sum) : 0.0f;
    int8_t* group = qs + (b / 4) * 4 * kQK32;
    for (int i = 0; i < 16; ++i) {
      group[(b % 4) * 16 + i] = q[i];
      group[64 + (b % 4) * 16 + i] = q[16 + i];
    }
    ds[2 * b] = d;
    ds[2 * b + 1] = d * static_cast<float>(sum);
  }
}

void QuantizeRowQ8ActK(const float* x, BlockQ8ActK* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b) {
    int sum;
    y[b].d = QuantizeGroup(x + b * kQKK, y[b].qs, kQKK, &sum);
    for (int g = 0; g < kQKK / 16; ++g) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += y[b].qs[16 * g + i];
      y[b].bsums[g] = static_cast<int16_t>(s);
    }
  }
}

}  // namespace strata
