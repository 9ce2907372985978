// Scalar dequantization, written to match GGML's (and the gguf Python
// package's) formulas operation for operation, so results are bit-exact:
//   Q4_0: d * (q - 8)           Q4_1: d * q + m          Q8_0: d * q
//   Q4_K/Q5_K: (d * sc) * q - (dmin * mn)                 Q6_K: (d * sc) * (q - 32)
// (no FMA contraction: this unit is compiled without -mfma).
#include "kernels/cpu/dequantize.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/quant_blocks.h"

namespace strata {
namespace {

void DequantQ8_0(const BlockQ8_0* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, y += kQK32) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK32; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void DequantQ4_0(const BlockQ4_0* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, y += kQK32) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK32 / 2; ++j) {
      y[j] = d * static_cast<float>((b[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void DequantQ4_1(const BlockQ4_1* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, y += kQK32) {
    const float d = F16ToF32(b[i].d);
    const float m = F16ToF32(b[i].m);
    for (int j = 0; j < kQK32 / 2; ++j) {
      y[j] = d * static_cast<float>(b[i].qs[j] & 0xF) + m;
      y[j + 16] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
    }
  }
}

void DequantQ4_K(const BlockQ4_K* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d);
    const float dmin = F16ToF32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c, q += 32, y += 64) {
      uint8_t sc, mn;
      KQuantScaleMin(2 * c, b[i].scales, &sc, &mn);
      const float d1 = d * sc, m1 = dmin * mn;
      KQuantScaleMin(2 * c + 1, b[i].scales, &sc, &mn);
      const float d2 = d * sc, m2 = dmin * mn;
      for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void DequantQ5_K(const BlockQ5_K* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d);
    const float dmin = F16ToF32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    const uint8_t* qh = b[i].qh;
    for (int c = 0; c < 4; ++c, q += 32, y += 64) {
      uint8_t sc, mn;
      KQuantScaleMin(2 * c, b[i].scales, &sc, &mn);
      const float d1 = d * sc, m1 = dmin * mn;
      KQuantScaleMin(2 * c + 1, b[i].scales, &sc, &mn);
      const float d2 = d * sc, m2 = dmin * mn;
      for (int l = 0; l < 32; ++l) {
        const int hi = (qh[l] >> (2 * c)) & 1;
        y[l] = d1 * static_cast<float>((q[l] & 0xF) | (hi << 4)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int hi = (qh[l] >> (2 * c + 1)) & 1;
        y[l + 32] = d2 * static_cast<float>((q[l] >> 4) | (hi << 4)) - m2;
      }
    }
  }
}

void DequantQ6_K(const BlockQ6_K* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d);
    for (int h = 0; h < 2; ++h, y += 128) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = (d * sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = (d * sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = (d * sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = (d * sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace

absl::Status DequantizeRow(TensorType type, const void* src, float* dst, int64_t n) {
  const int64_t bs = BlockSize(type);
  if (bs == 0 || !IsSupportedWeightType(type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("DequantizeRow: unsupported tensor type ", TensorTypeName(type)));
  }
  if (n < 0 || n % bs != 0) {
    return absl::InvalidArgumentError(absl::StrCat("DequantizeRow: n = ", n, " is not a multiple of the ",
                                                   TensorTypeName(type), " block size ", bs));
  }
  if (n == 0) return absl::OkStatus();
  if (src == nullptr || dst == nullptr) {
    return absl::InvalidArgumentError("DequantizeRow: null src or dst");
  }
  const int64_t nb = n / bs;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case TensorType::kF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(h[i]);
      break;
    }
    case TensorType::kBF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(h[i]);
      break;
    }
    case TensorType::kQ8_0:
      DequantQ8_0(static_cast<const BlockQ8_0*>(src), nb, dst);
      break;
    case TensorType::kQ4_0:
      DequantQ4_0(static_cast<const BlockQ4_0*>(src), nb, dst);
      break;
    case TensorType::kQ4_1:
      DequantQ4_1(static_cast<const BlockQ4_1*>(src), nb, dst);
      break;
    case TensorType::kQ4_K:
      DequantQ4_K(static_cast<const BlockQ4_K*>(src), nb, dst);
      break;
    case TensorType::kQ5_K:
      DequantQ5_K(static_cast<const BlockQ5_K*>(src), nb, dst);
      break;
    case TensorType::kQ6_K:
      DequantQ6_K(static_cast<const BlockQ6_K*>(src), nb, dst);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("DequantizeRow: unsupported tensor type ", TensorTypeName(type)));
  }
  return absl::OkStatus();
}

}  // namespace strata
