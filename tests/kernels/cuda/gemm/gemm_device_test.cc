// The gemm group on a real GPU: the cuBLASLt executor (BF16, FP8 per tensor and per
// channel) and the weight-only launchers, against the independent CPU ops. Skips
// (with a message) without a CUDA device; the FP8 tests also skip below sm_89.
// Inputs are rounded to the GEMM's input type first and the CPU reference
// (ReferenceMatMul: f32 values, double accumulation) runs on those rounded values,
// so the tolerances cover only accumulation and output rounding:
//   BF16 GEMM:  |err| <= 1e-3 * sum|w*x| + 8e-3 * (|want| + |bias|)   (f32
//               accumulate; bf16 Y rounding is 2^-9 relative, once before the column
//               epilogue adds the bias and once after)
//   FP8 GEMM:   |err| <= 1e-2 * sum|w*x| + 8e-3 * |want|   (fast accumulation on
//               Hopper keeps fewer accumulator bits between promotions)
//   DequantBf16 exact; QGemv |err| <= 1e-5 * sum|w*x| + 1e-6 (as on the harness).
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/gemm/cublaslt_gemm.h"
#include "kernels/cuda/gemm/launchers.h"

namespace strata::cuda {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

using ::strata::cuda::testing::DeviceBuffer;

std::vector<float> RandomNonZero(size_t n, uint32_t seed, float lo = 0.05f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (rng() & 1) ? -mag(rng) : mag(rng);
  return v;
}

// want[t, r] = sum_c w[r, c] * x[t, c] on f32 values (rows packed), and sum |w*x|.
void Reference(const std::vector<float>& w, const std::vector<float>& x, int64_t m, int64_t n, int64_t k,
               std::vector<float>* want, std::vector<double>* mag) {
  want->assign(static_cast<size_t>(m * n), kNaN);
  MatMulParams p;
  p.weight_type = TensorType::kF32;
  p.weight = w.data();
  p.rows = n;
  p.cols = k;
  p.input = x.data();
  p.tokens = m;
  p.output = want->data();
  ASSERT_TRUE(ReferenceMatMul(p).ok());
  mag->assign(static_cast<size_t>(m * n), 0.0);
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < k; ++c) (*mag)[t * n + r] += std::fabs(double{w[r * k + c]} * x[t * k + c]);
    }
  }
}

// got[t * stride + r] (f32 or bf16 bits) against want; padding must be untouched.
template <typename T>
void ExpectGemmClose(const std::vector<T>& got, int64_t stride, const std::vector<float>& want,
                     const std::vector<double>& mag, int64_t m, int64_t n, double rel_mag, double rel,
                     const char* what, const float* bias = nullptr) {
  int bad = 0;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t r = 0; r < n; ++r) {
      const T raw = got[t * stride + r];
      float g;
      if constexpr (sizeof(T) == 2) {
        g = BF16ToF32(raw);
      } else {
        g = raw;
      }
      const float w = want[t * n + r];
      // An unfused bias is added after Y was rounded: relative to |want| + |bias|.
      const double out_mag = std::fabs(w) + (bias ? std::fabs(bias[r]) : 0.0f);
      if (!(std::isfinite(g) && std::fabs(g - w) <= rel_mag * mag[t * n + r] + rel * out_mag) &&
          ++bad <= 5) {
        ADD_FAILURE() << what << " y[" << t << ", " << r << "] = " << g << ", want " << w;
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

std::unique_ptr<CublasLtGemm> MakeGemm() {
  absl::StatusOr<std::unique_ptr<CublasLtGemm>> g = CublasLtGemm::Create(0, 32 << 20);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? std::move(*g) : nullptr;
}

TEST(CudaGemmDevice, Bf16GemmMatchesCpu) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<CublasLtGemm> gemm = MakeGemm();
  ASSERT_NE(gemm, nullptr);
  const int64_t m = 7, n = 67, k = 96, w_ld = k + 8, x_ld = k + 16;
  // Round to bf16; the reference uses the rounded values.
  std::vector<float> wf = RandomNonZero(n * k, 1), xf = RandomNonZero(m * k, 2);
  std::vector<uint16_t> wb(n * w_ld, 0), xb(m * x_ld, 0);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      wb[r * w_ld + c] = F32ToBF16(wf[r * k + c]);
      wf[r * k + c] = BF16ToF32(wb[r * w_ld + c]);
    }
  }
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t c = 0; c < k; ++c) {
      xb[t * x_ld + c] = F32ToBF16(xf[t * k + c]);
      xf[t * k + c] = BF16ToF32(xb[t * x_ld + c]);
    }
  }
  const std::vector<float> bias = RandomNonZero(n, 3);
  std::vector<float> want, want_bias;
  std::vector<double> mag;
  Reference(wf, xf, m, n, k, &want, &mag);
  want_bias = want;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t r = 0; r < n; ++r) want_bias[t * n + r] += bias[r];
  }
  DeviceBuffer<uint16_t> dw(wb), dx(xb);
  DeviceBuffer<float> dbias(bias);
  for (bool with_bias : {false, true}) {
    GemmRequest req;
    req.shape = {m, n, k};
    req.w_dtype = req.x_dtype = GemmDtype::kBF16;
    req.w_row_stride = w_ld * 2;
    req.x_row_stride = x_ld * 2;
    req.has_bias = with_bias;
    req.sm = gemm->sm();
    const std::vector<float>& expect = with_bias ? want_bias : want;
    {  // F32 Y (bias fused into cuBLASLt)
      req.y_dtype = GemmDtype::kF32;
      req.y_row_stride = (n + 5) * 4;
      absl::StatusOr<CublasLtGemmPlan> plan = PlanGemm(req);
      ASSERT_TRUE(plan.ok()) << plan.status();
      DeviceBuffer<float> dy(std::vector<float>(m * (n + 5), kNaN));
      absl::Status s = gemm->Run(*plan, {dw.ptr, dx.ptr, dy.ptr, dbias.ptr, nullptr, nullptr}, nullptr);
      ASSERT_TRUE(s.ok()) << s;
      ExpectGemmClose(dy.Read(), n + 5, expect, mag, m, n, 1e-3, 1e-5, "bf16 -> f32");
    }
    {  // BF16 Y (bias in the column epilogue)
      req.y_dtype = GemmDtype::kBF16;
      req.y_row_stride = (n + 5) * 2;
      absl::StatusOr<CublasLtGemmPlan> plan = PlanGemm(req);
      ASSERT_TRUE(plan.ok()) << plan.status();
      DeviceBuffer<uint16_t> dy(std::vector<uint16_t>(m * (n + 5), 0xFFFF));
      absl::Status s = gemm->Run(*plan, {dw.ptr, dx.ptr, dy.ptr, dbias.ptr, nullptr, nullptr}, nullptr);
      ASSERT_TRUE(s.ok()) << s;
      ExpectGemmClose(dy.Read(), n + 5, expect, mag, m, n, 1e-3, 8e-3, "bf16 -> bf16",
                      with_bias ? bias.data() : nullptr);
    }
  }
}

// FP8: W per channel (scale[n] = amax of row / 448) or per tensor, X per tensor.
TEST(CudaGemmDevice, Fp8GemmMatchesCpu) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<CublasLtGemm> gemm = MakeGemm();
  ASSERT_NE(gemm, nullptr);
  if (gemm->sm() < 89) GTEST_SKIP() << "FP8 needs sm_89+, device is sm_" << gemm->sm();
  const int64_t m = 16, n = 48, k = 64;
  for (bool per_channel : {false, true}) {
    std::vector<float> wf = RandomNonZero(n * k, 4), xf = RandomNonZero(m * k, 5);
    std::vector<float> w_scale(per_channel ? n : 1, 0.0f);
    for (int64_t r = 0; r < n; ++r) {
      float& s = w_scale[per_channel ? r : 0];
      for (int64_t c = 0; c < k; ++c) s = std::max(s, std::fabs(wf[r * k + c]));
    }
    for (float& s : w_scale) s /= 448.0f;
    float x_amax = 0.0f;
    for (float v : xf) x_amax = std::max(x_amax, std::fabs(v));
    const std::vector<float> x_scale = {x_amax / 448.0f};
    std::vector<uint8_t> wq(n * k), xq(m * k);
    for (int64_t r = 0; r < n; ++r) {
      const float s = w_scale[per_channel ? r : 0];
      for (int64_t c = 0; c < k; ++c) {
        wq[r * k + c] = F32ToE4M3(wf[r * k + c] / s);
        wf[r * k + c] = E4M3ToF32(wq[r * k + c]) * s;
      }
    }
    for (size_t i = 0; i < xf.size(); ++i) {
      xq[i] = F32ToE4M3(xf[i] / x_scale[0]);
      xf[i] = E4M3ToF32(xq[i]) * x_scale[0];
    }
    std::vector<float> want;
    std::vector<double> mag;
    Reference(wf, xf, m, n, k, &want, &mag);
    DeviceBuffer<uint8_t> dw(wq), dx(xq);
    DeviceBuffer<float> dws(w_scale), dxs(x_scale);
    for (GemmDtype out : {GemmDtype::kBF16, GemmDtype::kF32}) {
      GemmRequest req;
      req.shape = {m, n, k};
      req.w_dtype = req.x_dtype = GemmDtype::kFp8E4M3;
      req.y_dtype = out;
      req.scale_mode = per_channel ? Fp8ScaleMode::kPerChannel : Fp8ScaleMode::kPerTensor;
      req.sm = gemm->sm();
      absl::StatusOr<CublasLtGemmPlan> plan = PlanGemm(req);
      ASSERT_TRUE(plan.ok()) << plan.status();
      const GemmOperands ops_base{dw.ptr, dx.ptr, nullptr, nullptr, dws.ptr, dxs.ptr};
      const char* what = per_channel ? "fp8 per channel" : "fp8 per tensor";
      if (out == GemmDtype::kBF16) {
        DeviceBuffer<uint16_t> dy(std::vector<uint16_t>(m * n, 0xFFFF));
        GemmOperands ops = ops_base;
        ops.y = dy.ptr;
        absl::Status s = gemm->Run(*plan, ops, nullptr);
        ASSERT_TRUE(s.ok()) << what << ": " << s;
        ExpectGemmClose(dy.Read(), n, want, mag, m, n, 1e-2, 8e-3, what);
      } else {
        DeviceBuffer<float> dy(std::vector<float>(m * n, kNaN));
        GemmOperands ops = ops_base;
        ops.y = dy.ptr;
        absl::Status s = gemm->Run(*plan, ops, nullptr);
        ASSERT_TRUE(s.ok()) << what << ": " << s;
        ExpectGemmClose(dy.Read(), n, want, mag, m, n, 1e-2, 1e-5, what);
      }
    }
  }
}

TEST(CudaGemmDevice, RunRejectsPlansForAnotherSm) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<CublasLtGemm> gemm = MakeGemm();
  ASSERT_NE(gemm, nullptr);
  GemmRequest req;
  req.shape = {1, 16, 16};
  req.sm = gemm->sm() + 1;
  absl::StatusOr<CublasLtGemmPlan> plan = PlanGemm(req);
  ASSERT_TRUE(plan.ok());
  int dummy = 0;
  EXPECT_EQ(gemm->Run(*plan, {&dummy, &dummy, &dummy, nullptr, nullptr, nullptr}, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
}

// Random Q8_0 / Q4_0 / Q4_1 rows (random f16 scales and quants).
std::vector<uint8_t> RandomQuantMatrix(WeightQuant q, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  const int64_t bb = WeightQuantBlockBytes(q), nb = cols / 32;
  std::vector<uint8_t> m(static_cast<size_t>(rows * nb * bb));
  for (int64_t b = 0; b < rows * nb; ++b) {
    uint8_t* blk = m.data() + b * bb;
    const uint16_t d = F32ToF16((rng() & 1) ? -scale(rng) : scale(rng));
    std::memcpy(blk, &d, 2);
    int64_t qs = 2;
    if (q == WeightQuant::kQ4_1) {
      const uint16_t mn = F32ToF16(scale(rng) * 4);
      std::memcpy(blk + 2, &mn, 2);
      qs = 4;
    }
    for (int64_t i = qs; i < bb; ++i) blk[i] = static_cast<uint8_t>(rng());
  }
  return m;
}

TEST(CudaGemmDevice, WeightOnlyKernelsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const struct {
    WeightQuant q;
    TensorType t;
  } cases[] = {{WeightQuant::kQ8_0, TensorType::kQ8_0},
               {WeightQuant::kQ4_0, TensorType::kQ4_0},
               {WeightQuant::kQ4_1, TensorType::kQ4_1}};
  for (const auto& qc : cases) {
    const int64_t n = 301, k = 2080, m = 5;  // 65 blocks per row
    const int64_t stride = k / 32 * WeightQuantBlockBytes(qc.q);
    const std::vector<uint8_t> w = RandomQuantMatrix(qc.q, n, k, 31);
    std::vector<float> wf(n * k);
    for (int64_t r = 0; r < n; ++r) {
      ASSERT_TRUE(DequantizeRow(qc.t, w.data() + r * stride, wf.data() + r * k, k).ok());
    }
    DeviceBuffer<uint8_t> dw(w);
    // Dequantise to bf16: exact.
    DeviceBuffer<uint16_t> dbf(std::vector<uint16_t>(n * k, 0xFFFF));
    ASSERT_TRUE(CudaStatus(LaunchDequantBf16({qc.q, dw.ptr, stride, n, k, dbf.ptr, k}, nullptr),
                           "DequantBf16").ok());
    const std::vector<uint16_t> bf = dbf.Read();
    int bad = 0;
    for (int64_t i = 0; i < n * k; ++i) {
      if (bf[i] != F32ToBF16(wf[i]) && ++bad <= 5) ADD_FAILURE() << "dequant [" << i << "]";
    }
    EXPECT_EQ(bad, 0);
    // GEMV.
    const std::vector<float> x = RandomNonZero(m * k, 32);
    std::vector<float> want;
    std::vector<double> mag;
    Reference(wf, x, m, n, k, &want, &mag);
    DeviceBuffer<float> dx(x), dy(std::vector<float>(m * n, kNaN));
    ASSERT_TRUE(CudaStatus(LaunchQGemv({qc.q, dw.ptr, stride, n, k, dx.ptr, k, m, dy.ptr, n}, nullptr),
                           "QGemv").ok());
    ExpectGemmClose(dy.Read(), n, want, mag, m, n, 1e-5, 1e-6, "qgemv");
  }
}

}  // namespace
}  // namespace strata::cuda
