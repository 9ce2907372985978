// The nvcc-built launchers on a real GPU against the CPU reference ops. Skips (with a
// message) on machines without a CUDA device. Tolerances as in host_parity_test.cc,
// relaxed where device intrinsics differ from libm: RMSNorm 1e-5 rel (rsqrtf is
// within 2 ulp), RoPE 1e-5 abs (device cos/sin of double), SwiGLU 1e-5 rel (expf 2 ulp).
#include <cuda_runtime_api.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/launchers.h"

namespace strata::cuda {
namespace {

using ::strata::cuda::testing::DeviceBuffer;

std::vector<float> RandomNonZero(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.05f, 2.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (rng() & 1) ? -mag(rng) : mag(rng);
  return v;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel,
                 float abs) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= abs + rel * std::fabs(want[i])) && ++bad <= 5) {
      ADD_FAILURE() << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(CudaDevice, RmsNormResidualMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 7, cols = 577;
  const auto x = RandomNonZero(rows * cols, 1), r = RandomNonZero(rows * cols, 2);
  const auto w = RandomNonZero(cols, 3);
  std::vector<float> h(rows * cols), want(rows * cols);
  for (size_t i = 0; i < h.size(); ++i) h[i] = x[i] + r[i];
  ASSERT_TRUE(strata::LaunchRmsNorm({h.data(), w.data(), want.data(), rows, cols, 1e-5f}).ok());
  DeviceBuffer<float> dx(x), dr(r), dw(w),
      dout(std::vector<float>(rows * cols, std::numeric_limits<float>::quiet_NaN()));
  ASSERT_EQ(LaunchRmsNormResidual({dx.ptr, dr.ptr, dw.ptr, dout.ptr, rows, cols, 1e-5f}, nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(dout.Read(), want, 1e-5f, 1e-6f);
  ExpectClose(dr.Read(), h, 0, 0);
}

TEST(CudaDevice, RopeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (bool neox : {false, true}) {
    const int64_t tokens = 7, heads = 5, head_dim = 64;
    const auto x = RandomNonZero(tokens * heads * head_dim, 4 + neox);
    std::vector<int32_t> pos(tokens);
    for (int64_t t = 0; t < tokens; ++t) pos[t] = static_cast<int32_t>(t * 613 + 1);
    std::vector<float> inv(head_dim / 2);
    for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / head_dim);
    std::vector<float> want = x;
    ASSERT_TRUE(strata::LaunchRope({want.data(), tokens, heads, head_dim, 0, pos.data(),
                                    inv.data(), neox}).ok());
    DeviceBuffer<float> dx(x), dinv(inv);
    DeviceBuffer<int32_t> dpos(pos);
    ASSERT_EQ(LaunchRope({dx.ptr, tokens, heads, head_dim, 0, dpos.ptr, dinv.ptr, neox}, nullptr),
              cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ExpectClose(dx.Read(), want, 1e-5f, 1e-5f);
  }
}

TEST(CudaDevice, SwiGluMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 7 * 1537;
  const auto g = RandomNonZero(n, 5), u = RandomNonZero(n, 6);
  std::vector<float> want(n);
  ASSERT_TRUE(strata::LaunchSwiGlu({g.data(), u.data(), want.data(), n}).ok());
  DeviceBuffer<float> dg(g), du(u),
      dout(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
  ASSERT_EQ(LaunchSwiGlu({dg.ptr, du.ptr, dout.ptr, n}, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(dout.Read(), want, 1e-5f, 1e-6f);
}

TEST(CudaDevice, EmbeddingMatchesRowCopy) {
  SKIP_WITHOUT_GPU();
  const int64_t vocab = 53, dim = 577, tokens = 7;
  const auto table = RandomNonZero(vocab * dim, 7);
  const std::vector<int32_t> ids = {5, 0, 52, 17, 17, 60, 3};  // 60 is out of range
  DeviceBuffer<float> dt(table),
      dout(std::vector<float>(tokens * dim, std::numeric_limits<float>::quiet_NaN()));
  DeviceBuffer<int32_t> dids(ids);
  DeviceBuffer<int> dbad(std::vector<int>(1, 0));
  ASSERT_EQ(LaunchEmbedding({dt.ptr, dids.ptr, dout.ptr, tokens, vocab, dim, 0, dbad.ptr}, nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto out = dout.Read();
  EXPECT_EQ(dbad.Read()[0], 1);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t d = 0; d < dim; ++d) {
      if (ids[t] >= vocab) {
        EXPECT_TRUE(std::isnan(out[t * dim + d]));
      } else {
        ASSERT_EQ(out[t * dim + d], table[ids[t] * dim + d]);
      }
    }
  }
}

TEST(CudaDevice, BadParamsAreInvalidValue) {
  // Validation happens before any CUDA call, so this runs without a GPU too.
  EXPECT_EQ(LaunchSwiGlu({nullptr, nullptr, nullptr, 4}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchRope({nullptr, 1, 1, 3, 0, nullptr, nullptr, false}, nullptr),
            cudaErrorInvalidValue);
  const absl::Status st = CudaStatus(cudaErrorInvalidValue, "Rope");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("Rope"), std::string::npos) << st;
  EXPECT_TRUE(CudaStatus(cudaSuccess, "Rope").ok());
}

}  // namespace
}  // namespace strata::cuda
