// Parity of the quant kernels (kernels/cuda/quant/), run on the host harness, against
// the CPU reference conversions (kernels/cpu/kv_quant.h, kernels/cpu/float16.h).
// Inputs: random bit patterns (every class of f32: NaN payloads, infinities,
// subnormals, values that round up to inf) plus a list of edge values, odd sizes,
// aligned and unaligned pointers; outputs start poisoned so unwritten elements fail.
// Tolerances: none, every op is bit-exact (casts, E4M3 codes, scales, dequantised
// values compared as bits).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cuda/quant/host/host_ops.h"

namespace strata::cuda {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}
float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}

// Edge values for the 16-bit casts, then random bit patterns up to n.
std::vector<float> CastInputs(size_t n, uint32_t seed) {
  std::vector<float> v = {
      0.0f, -0.0f, 1.0f, -1.0f, kInf, -kInf, kNaN, -kNaN,
      FromBits(0x7F800001u), FromBits(0xFF812345u), FromBits(0x7FFFFFFFu),  // NaN payloads
      FromBits(0x00000001u), FromBits(0x80000001u), FromBits(0x007FFFFFu),  // f32 subnormals
      std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
      FromBits(0x7F7F8000u), FromBits(0x7F7F7FFFu),  // bf16: rounds up to inf / stays finite
      FromBits(0x3F808000u), FromBits(0x3F818000u),  // bf16 ties to even (down, up)
      65504.0f, 65519.99f, 65520.0f, -65520.0f, 65536.0f,  // f16 max, rounds up to inf
      5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 8.940697e-08f,  // f16 subnormal ties
      6.1035156e-05f, 6.1035152e-05f, 6.097555e-05f,  // f16 normal/subnormal boundary
      1.00048828125f, 1.00146484375f,  // f16 ties to even
  };
  std::mt19937 rng(seed);
  while (v.size() < n) {
    const uint32_t b = rng();
    // Half random bits, half moderate magnitudes (most land in f16's range).
    v.push_back((v.size() & 1) ? FromBits(b) : FromBits((b & 0x87FFFFFFu) | 0x30000000u));
  }
  v.resize(n);
  return v;
}

void RunCast16(CastKind kind, size_t offset) {
  const size_t n = 10007;
  const auto all = CastInputs(n + offset, 7 + static_cast<uint32_t>(kind));
  std::vector<uint16_t> out(n + offset, 0xDEAD);
  CastParams p{kind, all.data() + offset, out.data() + offset, static_cast<int64_t>(n)};
  ASSERT_TRUE(HostRunCast(p).ok());
  int bad = 0;
  for (size_t i = offset; i < n + offset; ++i) {
    const uint16_t want = kind == CastKind::kF32ToBF16 ? F32ToBF16(all[i]) : F32ToF16(all[i]);
    if (out[i] != want && ++bad <= 5) {
      ADD_FAILURE() << "x=" << all[i] << " (0x" << std::hex << Bits(all[i]) << ") got 0x" << out[i]
                    << " want 0x" << want << std::dec << " at " << i;
    }
  }
  EXPECT_EQ(bad, 0);
  for (size_t i = 0; i < offset; ++i) EXPECT_EQ(out[i], 0xDEAD) << "wrote before the output";
}

TEST(CudaQuantHostParity, CastF32ToBF16MatchesCpu) {
  RunCast16(CastKind::kF32ToBF16, 0);  // vector path
  RunCast16(CastKind::kF32ToBF16, 1);  // unaligned: scalar path
}

TEST(CudaQuantHostParity, CastF32ToF16MatchesCpu) {
  RunCast16(CastKind::kF32ToF16, 0);
  RunCast16(CastKind::kF32ToF16, 3);
}

TEST(CudaQuantHostParity, CastBF16ToF32IsExactForEveryPattern) {
  for (size_t offset : {size_t{0}, size_t{1}}) {
    std::vector<uint16_t> in(65536 + 3 + offset);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint16_t>(i * 40503u);
    const size_t n = in.size() - offset;  // odd when offset is 0 or 1... (65539, 65539)
    std::vector<float> out(in.size(), kNaN);
    CastParams p{CastKind::kBF16ToF32, in.data() + offset, out.data() + offset,
                 static_cast<int64_t>(n)};
    ASSERT_TRUE(HostRunCast(p).ok());
    int bad = 0;
    for (size_t i = offset; i < in.size(); ++i) {
      if (Bits(out[i]) != Bits(BF16ToF32(in[i])) && ++bad <= 5) {
        ADD_FAILURE() << "bf16 0x" << std::hex << in[i] << std::dec << " at " << i;
      }
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST(CudaQuantHostParity, CastRejectsBadParams) {
  float x = 1.0f;
  uint16_t y = 0;
  EXPECT_FALSE(HostRunCast({CastKind::kF32ToBF16, nullptr, &y, 1}).ok());
  EXPECT_FALSE(HostRunCast({CastKind::kF32ToBF16, &x, &y, -1}).ok());
  EXPECT_FALSE(HostRunCast({static_cast<CastKind>(9), &x, &y, 1}).ok());
  EXPECT_TRUE(HostRunCast({CastKind::kF32ToF16, nullptr, nullptr, 0}).ok());
}

// Random non-zero activations with a wide dynamic range (codes cover subnormals,
// normals and the saturation limit).
std::vector<float> Activations(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> exponent(-12.0f, 6.0f);
  std::vector<float> v(n);
  for (float& x : v) x = ((rng() & 1) ? -1.0f : 1.0f) * std::exp2(exponent(rng));
  return v;
}

void ExpectCodes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                 const char* what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i] && ++bad <= 5) {
      ADD_FAILURE() << what << " code[" << i << "] = " << int{got[i]} << ", want " << int{want[i]};
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// Per-tensor: the CPU reference quantises the whole tensor as one row.
void CheckPerTensor(const std::vector<float>& x, int64_t rows, int64_t cols, const char* what) {
  std::vector<uint8_t> want(x.size()), codes(x.size(), 0xCD);
  const float want_scale = QuantizeRowFp8(x.data(), rows * cols, want.data());
  float scale = -1.0f;
  uint32_t amax = 0xFFFFFFFFu;  // stale workspace: the run must reset it
  Fp8QuantizeParams p{x.data(), codes.data(), rows, cols, Fp8QuantizeMode::kPerTensor, &scale, nullptr, &amax};
  ASSERT_TRUE(HostRunFp8Quantize(p).ok()) << what;
  EXPECT_EQ(Bits(scale) == Bits(want_scale) || (std::isnan(scale) && std::isnan(want_scale)), true)
      << what << ": scale " << scale << ", want " << want_scale;
  ExpectCodes(codes, want, what);
}

TEST(CudaQuantHostParity, Fp8PerTensorMatchesCpu) {
  const int64_t rows = 7, cols = 1001;  // 28 blocks: the amax crosses blocks by atomicMax
  auto x = Activations(rows * cols, 1);
  CheckPerTensor(x, rows, cols, "random");
  x[4321] = 9000.0f;  // the maximum in a late block
  CheckPerTensor(x, rows, cols, "late max");
  std::vector<float> zeros(rows * cols, 0.0f);
  zeros[17] = -0.0f;
  CheckPerTensor(zeros, rows, cols, "all zero");
  auto with_nan = x;
  with_nan[5000] = kNaN;
  with_nan[6] = -kInf;
  CheckPerTensor(with_nan, rows, cols, "NaN and -inf");
  auto with_inf = x;
  with_inf[rows * cols - 1] = kInf;
  CheckPerTensor(with_inf, rows, cols, "+inf");
  CheckPerTensor(Activations(1, 3), 1, 1, "one element");
}

TEST(CudaQuantHostParity, Fp8PerRowMatchesCpu) {
  const int64_t rows = 9, cols = 777;
  auto x = Activations(rows * cols, 2);
  for (int64_t c = 0; c < cols; ++c) x[2 * cols + c] = 0.0f;      // zero row
  x[4 * cols + 100] = kNaN;                                       // NaN row
  x[5 * cols + 776] = -kInf;                                      // inf row
  for (int64_t c = 0; c < cols; ++c) x[6 * cols + c] *= 1e-30f;   // tiny row (f32 subnormals)
  x[7 * cols + 3] = 3.0e38f;                                      // huge amax
  std::vector<uint8_t> want(x.size()), codes(x.size(), 0xCD);
  std::vector<float> want_scales(rows), scales(rows, kNaN);
  for (int64_t r = 0; r < rows; ++r) {
    want_scales[r] = QuantizeRowFp8(x.data() + r * cols, cols, want.data() + r * cols);
  }
  Fp8QuantizeParams p{x.data(), codes.data(), rows, cols, Fp8QuantizeMode::kPerRow, scales.data()};
  ASSERT_TRUE(HostRunFp8Quantize(p).ok());
  ExpectCodes(codes, want, "per row");
  for (int64_t r = 0; r < rows; ++r) {
    if (std::isnan(want_scales[r])) {
      EXPECT_TRUE(std::isnan(scales[r])) << "row " << r;
    } else {
      EXPECT_EQ(Bits(scales[r]), Bits(want_scales[r])) << "row " << r;
    }
  }
  EXPECT_TRUE(std::isnan(scales[4]) && std::isnan(scales[5]));
  EXPECT_EQ(scales[2], 0.0f);
}

TEST(CudaQuantHostParity, Fp8StaticScaleMatchesCpu) {
  const int64_t rows = 5, cols = 333;
  auto x = Activations(rows * cols, 4);
  x[10] = kNaN;
  x[11] = -kNaN;
  x[12] = kInf;
  x[13] = 1e6f;  // saturates
  for (float s : {0.01f, 0.37f, 1.0f}) {
    std::vector<uint8_t> codes(x.size(), 0xCD), want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = F32ToE4M3(x[i] / s);
    Fp8QuantizeParams p{x.data(), codes.data(), rows, cols, Fp8QuantizeMode::kStatic, nullptr, &s};
    ASSERT_TRUE(HostRunFp8Quantize(p).ok());
    ExpectCodes(codes, want, "static");
  }
}

TEST(CudaQuantHostParity, Fp8DequantizeMatchesCpu) {
  const int64_t rows = 3, cols = 256 * 2 + 5;  // every code, twice, per row
  std::vector<uint8_t> codes(rows * cols);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 7);
  const std::vector<float> scales = {0.0123f, 3.5f, kNaN};
  for (bool per_row : {false, true}) {
    std::vector<float> out(codes.size(), kNaN), want(codes.size());
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRowFp8(codes.data() + r * cols, scales[per_row ? r : 0], cols, want.data() + r * cols);
    }
    Fp8DequantizeParams p{codes.data(), scales.data(), out.data(), rows, cols, per_row};
    ASSERT_TRUE(HostRunFp8Dequantize(p).ok());
    int bad = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const bool same = Bits(out[i]) == Bits(want[i]) || (std::isnan(out[i]) && std::isnan(want[i]));
      if (!same && ++bad <= 5) ADD_FAILURE() << "[" << i << "] " << out[i] << " want " << want[i];
    }
    EXPECT_EQ(bad, 0) << "per_row " << per_row;
  }
}

TEST(CudaQuantHostParity, Fp8RoundTripWithinHalfAStep) {
  // quantise per row then dequantise: |x - x'| <= 2^-4 |x| for normal codes (3
  // mantissa bits, RNE) plus half a subnormal step (scale * 2^-10).
  const int64_t rows = 4, cols = 515;
  const auto x = Activations(rows * cols, 5);
  std::vector<uint8_t> codes(x.size());
  std::vector<float> scales(rows), back(x.size(), kNaN);
  ASSERT_TRUE(HostRunFp8Quantize({x.data(), codes.data(), rows, cols, Fp8QuantizeMode::kPerRow,
                                  scales.data()}).ok());
  ASSERT_TRUE(HostRunFp8Dequantize({codes.data(), scales.data(), back.data(), rows, cols, true}).ok());
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float s = scales[i / cols];
    EXPECT_LE(std::fabs(x[i] - back[i]), std::fabs(x[i]) / 16.0f + s / 1024.0f) << i;
  }
}

TEST(CudaQuantHostParity, Fp8RejectsBadParams) {
  float x = 1.0f, scale = 0.0f;
  uint8_t code = 0;
  EXPECT_FALSE(HostRunFp8Quantize({&x, &code, 1, 1, Fp8QuantizeMode::kPerTensor, &scale}).ok());  // no workspace
  EXPECT_FALSE(HostRunFp8Quantize({&x, &code, 1, 1, Fp8QuantizeMode::kPerRow}).ok());
  EXPECT_FALSE(HostRunFp8Quantize({&x, &code, 1, 1, Fp8QuantizeMode::kStatic, &scale}).ok());
  EXPECT_FALSE(HostRunFp8Quantize({&x, &code, -1, 1, Fp8QuantizeMode::kPerRow, &scale}).ok());
  EXPECT_TRUE(HostRunFp8Quantize({nullptr, nullptr, 0, 5, Fp8QuantizeMode::kPerRow}).ok());
  EXPECT_FALSE(HostRunFp8Dequantize({&code, nullptr, &x, 1, 1, false}).ok());
}

}  // namespace
}  // namespace strata::cuda
