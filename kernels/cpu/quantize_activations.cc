#include "kernels/cpu/quantize_activations.h"

#include <cmath>

namespace strata {
namespace {

// Quantizes n values with one scale; returns d and writes q. Sum in *sum.
float QuantizeGroup(const float* x, int8_t* q, int n, int* sum) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 127.0f / amax : 0.0f;
  int s = 0;
  for (int i = 0; i < n; ++i) {
    const int v = static_cast<int>(std::round(x[i] * id));
    q[i] = static_cast<int8_t>(v > 127 ? 127 : (v < -127 ? -127 : v));
    s += q[i];
  }
  *sum = s;
  return d;
}

}  // namespace

void QuantizeRowQ8Act32(const float* x, void* y, int64_t n) {
  auto* qs = static_cast<int8_t*>(y);
  auto* d = reinterpret_cast<float*>(qs + n);
  float* s = d + n / kQK32;
  for (int64_t b = 0; b < n / kQK32; ++b) {
    int sum;
    d[b] = QuantizeGroup(x + b * kQK32, qs + b * kQK32, kQK32, &sum);
    s[b] = d[b] * static_cast<float>(sum);
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
