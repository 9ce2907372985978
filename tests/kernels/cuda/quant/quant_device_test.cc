// The quant kernels on a GPU against the CPU reference (bit-exact, like the host
// parity test); skipped without a CUDA device.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cuda/quant/launchers.h"

namespace strata::cuda {
namespace {

using ::strata::cuda::testing::DeviceBuffer;

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

std::vector<float> RandomBits(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) {
    const uint32_t b = rng();
    std::memcpy(&x, &b, sizeof(x));
  }
  return v;
}

TEST(CudaQuantDevice, CastsMatchCpuBitExact) {
  SKIP_WITHOUT_GPU();
  const auto x = RandomBits(100003, 1);
  DeviceBuffer<float> dx(x);
  for (CastKind kind : {CastKind::kF32ToBF16, CastKind::kF32ToF16}) {
    DeviceBuffer<uint16_t> out(std::vector<uint16_t>(x.size(), 0xDEAD));
    ASSERT_EQ(LaunchCast({kind, dx.ptr, out.ptr, static_cast<int64_t>(x.size())}, nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto got = out.Read();
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const uint16_t want = kind == CastKind::kF32ToBF16 ? F32ToBF16(x[i]) : F32ToF16(x[i]);
      if (got[i] != want && ++bad <= 5) ADD_FAILURE() << "0x" << std::hex << Bits(x[i]);
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST(CudaQuantDevice, Fp8QuantizeMatchesCpuBitExact) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 37, cols = 4099;
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> e(-12.0f, 6.0f);
  std::vector<float> x(rows * cols);
  for (float& v : x) v = ((rng() & 1) ? -1.0f : 1.0f) * std::exp2(e(rng));
  DeviceBuffer<float> dx(x);
  DeviceBuffer<uint8_t> codes(std::vector<uint8_t>(x.size(), 0xCD));
  DeviceBuffer<float> scales(std::vector<float>(rows, -1.0f));
  DeviceBuffer<uint32_t> amax(std::vector<uint32_t>(1, 0xFFFFFFFFu));

  std::vector<uint8_t> want(x.size());
  const float want_scale = QuantizeRowFp8(x.data(), rows * cols, want.data());
  ASSERT_EQ(LaunchFp8Quantize({dx.ptr, codes.ptr, rows, cols, Fp8QuantizeMode::kPerTensor, scales.ptr,
                               nullptr, amax.ptr}, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(Bits(scales.Read()[0]), Bits(want_scale));
  EXPECT_EQ(codes.Read(), want);

  std::vector<float> want_scales(rows);
  for (int64_t r = 0; r < rows; ++r) {
    want_scales[r] = QuantizeRowFp8(x.data() + r * cols, cols, want.data() + r * cols);
  }
  ASSERT_EQ(LaunchFp8Quantize({dx.ptr, codes.ptr, rows, cols, Fp8QuantizeMode::kPerRow, scales.ptr},
                              nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(scales.Read(), want_scales);
  EXPECT_EQ(codes.Read(), want);

  std::vector<float> back(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRowFp8(want.data() + r * cols, want_scales[r], cols, back.data() + r * cols);
  }
  DeviceBuffer<float> out(std::vector<float>(x.size(), std::numeric_limits<float>::quiet_NaN()));
  ASSERT_EQ(LaunchFp8Dequantize({codes.ptr, scales.ptr, out.ptr, rows, cols, true}, nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(out.Read(), back);
}

}  // namespace
}  // namespace strata::cuda
