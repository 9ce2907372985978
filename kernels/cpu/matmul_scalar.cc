// Portable row kernels (any x86-64 or other CPU). Integer dot products per
// block, f32 accumulation across blocks; the same arithmetic the SIMD kernels
// do, just one element at a time.
#include "kernels/cpu/float16.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant_blocks.h"

namespace strata {
namespace {

// Runs dot(weight row, activation row) for every row in range and token.
template <typename Dot>
void ForRowsTokens(const KernelArgs& k, int64_t rb, int64_t re, Dot dot) {
  for (int64_t r = rb; r < re; ++r) {
    const uint8_t* w = k.weight + r * k.weight_stride;
    for (int64_t t = 0; t < k.tokens; ++t) {
      k.out[t * k.out_stride + r] = dot(w, static_cast<const uint8_t*>(k.act) + t * k.act_stride);
    }
  }
}

float DotF32(int64_t n, const float* w, const float* x) {
  float acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) acc[k] += w[i + k] * x[i + k];
  }
  for (; i < n; ++i) acc[0] += w[i] * x[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

template <float (*Convert)(uint16_t)>
float DotHalf(int64_t n, const uint16_t* w, const float* x) {
  float acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) acc[k] += Convert(w[i + k]) * x[i + k];
  }
  for (; i < n; ++i) acc[0] += Convert(w[i]) * x[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

float DotQ8_0(int64_t nb, const BlockQ8_0* w, const Q8Act32Row& a) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* qa = a.qs + b * kQK32;
    int isum = 0;
    for (int j = 0; j < kQK32; ++j) isum += w[b].qs[j] * qa[j];
    sum += F16ToF32(w[b].d) * a.ds[2 * b] * static_cast<float>(isum);
  }
  return sum;
}

float DotQ4_0(int64_t nb, const BlockQ4_0* w, const Q8Act32Row& a) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* qa = a.qs + b * kQK32;
    int isum = 0;
    for (int j = 0; j < kQK32 / 2; ++j) {
      isum += ((w[b].qs[j] & 0xF) - 8) * qa[j];
      isum += ((w[b].qs[j] >> 4) - 8) * qa[j + 16];
    }
    sum += F16ToF32(w[b].d) * a.ds[2 * b] * static_cast<float>(isum);
  }
  return sum;
}

float DotQ4_1(int64_t nb, const BlockQ4_1* w, const Q8Act32Row& a) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* qa = a.qs + b * kQK32;
    int isum = 0;
    for (int j = 0; j < kQK32 / 2; ++j) {
      isum += (w[b].qs[j] & 0xF) * qa[j];
      isum += (w[b].qs[j] >> 4) * qa[j + 16];
    }
    sum += F16ToF32(w[b].d) * a.ds[2 * b] * static_cast<float>(isum) + F16ToF32(w[b].m) * a.ds[2 * b + 1];
  }
  return sum;
}

// Shared by Q4_K and Q5_K: sum_j sc_j * dot_j and the min term.
template <bool kFiveBit, typename Block>
float DotQ45_K(int64_t nb, const Block* w, const BlockQ8ActK* a) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0, summ = 0;
    const int8_t* qa = a[b].qs;
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = w[b].qs + 32 * c;
      uint8_t sc0, mn0, sc1, mn1;
      KQuantScaleMin(2 * c, w[b].scales, &sc0, &mn0);
      KQuantScaleMin(2 * c + 1, w[b].scales, &sc1, &mn1);
      int d0 = 0, d1 = 0;
      for (int l = 0; l < 32; ++l) {
        int lo = q[l] & 0xF, hi = q[l] >> 4;
        if constexpr (kFiveBit) {
          const uint8_t* qh = reinterpret_cast<const BlockQ5_K*>(&w[b])->qh;
          lo |= ((qh[l] >> (2 * c)) & 1) << 4;
          hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
        }
        d0 += lo * qa[64 * c + l];
        d1 += hi * qa[64 * c + 32 + l];
      }
      sumi += sc0 * d0 + sc1 * d1;
      summ += mn0 * (a[b].bsums[4 * c] + a[b].bsums[4 * c + 1]) +
              mn1 * (a[b].bsums[4 * c + 2] + a[b].bsums[4 * c + 3]);
    }
    sum += a[b].d * F16ToF32(w[b].d) * static_cast<float>(sumi) -
           a[b].d * F16ToF32(w[b].dmin) * static_cast<float>(summ);
  }
  return sum;
}

float DotQ6_K(int64_t nb, const BlockQ6_K* w, const BlockQ8ActK* a) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int q[kQKK];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[b].ql + 64 * h;
      const uint8_t* qh = w[b].qh + 32 * h;
      int* y = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        y[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        y[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        y[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      }
    }
    int sumi = 0;
    for (int g = 0; g < kQKK / 16; ++g) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += q[16 * g + i] * a[b].qs[16 * g + i];
      sumi += w[b].scales[g] * s;
    }
    sum += F16ToF32(w[b].d) * a[b].d * static_cast<float>(sumi);
  }
  return sum;
}

void KernelF32(const KernelArgs& k, int64_t rb, int64_t re) {
  ForRowsTokens(k, rb, re, [&](const uint8_t* w, const uint8_t* x) {
    return DotF32(k.cols, reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(x));
  });
}

template <float (*Convert)(uint16_t)>
void KernelHalf(const KernelArgs& k, int64_t rb, int64_t re) {
  ForRowsTokens(k, rb, re, [&](const uint8_t* w, const uint8_t* x) {
    return DotHalf<Convert>(k.cols, reinterpret_cast<const uint16_t*>(w),
                            reinterpret_cast<const float*>(x));
  });
}

template <typename Block, float (*Dot)(int64_t, const Block*, const Q8Act32Row&)>
void Kernel32(const KernelArgs& k, int64_t rb, int64_t re) {
  ForRowsTokens(k, rb, re, [&](const uint8_t* w, const uint8_t* x) {
    return Dot(k.cols / kQK32, reinterpret_cast<const Block*>(w), ViewQ8Act32(x, k.cols));
  });
}

template <typename Block, float (*Dot)(int64_t, const Block*, const BlockQ8ActK*)>
void KernelK(const KernelArgs& k, int64_t rb, int64_t re) {
  ForRowsTokens(k, rb, re, [&](const uint8_t* w, const uint8_t* x) {
    return Dot(k.cols / kQKK, reinterpret_cast<const Block*>(w),
               reinterpret_cast<const BlockQ8ActK*>(x));
  });
}

}  // namespace

MatMulKernel ScalarKernel(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return KernelF32;
    case TensorType::kF16:
      return KernelHalf<F16ToF32>;
    case TensorType::kBF16:
      return KernelHalf<BF16ToF32>;
    case TensorType::kQ8_0:
      return Kernel32<BlockQ8_0, DotQ8_0>;
    case TensorType::kQ4_0:
      return Kernel32<BlockQ4_0, DotQ4_0>;
    case TensorType::kQ4_1:
      return Kernel32<BlockQ4_1, DotQ4_1>;
    case TensorType::kQ4_K:
      return KernelK<BlockQ4_K, DotQ45_K<false, BlockQ4_K>>;
    case TensorType::kQ5_K:
      return KernelK<BlockQ5_K, DotQ45_K<true, BlockQ5_K>>;
    case TensorType::kQ6_K:
      return KernelK<BlockQ6_K, DotQ6_K>;
    default:
      return nullptr;
  }
}

}  // namespace strata
