// The gemm group's kernels on the host harness against the independent CPU ops
// (kernels/cpu). Weights are random GGUF blocks (random f16 scales/mins, one scale
// in eight an f16 subnormal, random quants), inputs random and non-zero, sizes odd
// where the op allows (N odd, K a multiple of 32), strides padded, outputs pre-filled
// with NaN so unwritten elements fail and padding must stay NaN. Tolerances:
//   DequantBf16:    exact: bf16(DequantizeRow(row)) bit for bit (same f32 arithmetic,
//                   no FMA, RNE rounding)
//   QGemv:          |got - want| <= 1e-5 * sum_c |w[c] * x[c]| + 1e-6, against
//                   ReferenceMatMul (dequantised f32 weights, double accumulation).
//                   Not LaunchMatMul: it quantises the activations to 8 bits, which
//                   this kernel does not (f32 activations, f32 accumulation).
//   ColumnEpilogue: exact: f32 y * scale + bias without FMA, then RNE to bf16.
//   FP8 plan + epilogue (cuBLASLt emulated from the plan's column-major fields, in
//   double): |got - want| <= 1e-5 * sum|w*x| (f32 Y), + 8e-3 * (|want| + |bias|) for a
//   bf16 Y (rounded once before the epilogue adds the bias, once after).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/gemm/gemm_plan.h"
#include "kernels/cuda/gemm/host/host_ops.h"

namespace strata::cuda {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr uint16_t kBf16NaN = 0xFFFF;

struct QuantCase {
  WeightQuant quant;
  TensorType type;
  const char* name;
};
constexpr QuantCase kQuants[] = {
    {WeightQuant::kQ8_0, TensorType::kQ8_0, "Q8_0"},
    {WeightQuant::kQ4_0, TensorType::kQ4_0, "Q4_0"},
    {WeightQuant::kQ4_1, TensorType::kQ4_1, "Q4_1"},
};

std::vector<float> RandomNonZero(size_t n, uint32_t seed, float lo = 0.05f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

// `rows` rows of cols / 32 random blocks, each row `stride` bytes (padding is 0xAB).
std::vector<uint8_t> RandomQuantMatrix(WeightQuant q, int64_t rows, int64_t cols, int64_t stride,
                                       uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  std::uniform_int_distribution<int> byte(0, 255);
  std::bernoulli_distribution neg(0.5);
  const int64_t bb = WeightQuantBlockBytes(q);
  std::vector<uint8_t> m(static_cast<size_t>(rows * stride), 0xAB);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      uint8_t* blk = m.data() + r * stride + b * bb;
      uint16_t d = F32ToF16(neg(rng) ? -scale(rng) : scale(rng));
      if (rng() % 8 == 0) d = static_cast<uint16_t>((rng() & 0x8000) | (1 + rng() % 0x3FF));  // subnormal
      std::memcpy(blk, &d, 2);
      int64_t qs = 2;
      if (q == WeightQuant::kQ4_1) {
        const uint16_t mn = F32ToF16(neg(rng) ? -scale(rng) * 8 : scale(rng) * 8);
        std::memcpy(blk + 2, &mn, 2);
        qs = 4;
      }
      for (int64_t i = qs; i < bb; ++i) blk[i] = static_cast<uint8_t>(byte(rng));
    }
  }
  return m;
}

TEST(CudaGemmHostParity, DequantBf16MatchesDequantizeRowExactly) {
  for (const QuantCase& qc : kQuants) {
    for (int64_t cols : {32, 96, 160}) {
      const int64_t rows = 37;
      const int64_t src_stride = cols / 32 * WeightQuantBlockBytes(qc.quant) + 6;
      const int64_t dst_stride = cols + 5;
      const std::vector<uint8_t> w = RandomQuantMatrix(qc.quant, rows, cols, src_stride, 7 + cols);
      std::vector<uint16_t> dst(static_cast<size_t>(rows * dst_stride), kBf16NaN);
      DequantBf16Params p{qc.quant, w.data(), src_stride, rows, cols, dst.data(), dst_stride};
      ASSERT_TRUE(HostRunDequantBf16(p).ok()) << qc.name;
      std::vector<float> ref(static_cast<size_t>(cols));
      int bad = 0;
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_TRUE(DequantizeRow(qc.type, w.data() + r * src_stride, ref.data(), cols).ok());
        for (int64_t c = 0; c < dst_stride; ++c) {
          const uint16_t want = c < cols ? F32ToBF16(ref[c]) : kBf16NaN;
          const uint16_t got = dst[r * dst_stride + c];
          if (got != want && ++bad <= 5) {
            ADD_FAILURE() << qc.name << " cols " << cols << " [" << r << ", " << c << "] = 0x" << std::hex
                          << got << ", want 0x" << want;
          }
        }
      }
      EXPECT_EQ(bad, 0) << qc.name;
    }
  }
}

TEST(CudaGemmHostParity, QGemvMatchesReferenceMatMul) {
  for (const QuantCase& qc : kQuants) {
    for (int64_t k : {32, 96, 1056}) {  // 1, 3 and 33 blocks: half-warps idle or uneven
      for (int64_t m : {1, 3, 8}) {
        const int64_t n = 37;
        const int64_t w_stride = k / 32 * WeightQuantBlockBytes(qc.quant) + 2;
        const int64_t x_stride = k + 3, y_stride = n + 3;
        const std::vector<uint8_t> w = RandomQuantMatrix(qc.quant, n, k, w_stride, 11 + k + m);
        const std::vector<float> x = RandomNonZero(static_cast<size_t>(m * k), 13 + k + m);
        std::vector<float> xp(static_cast<size_t>(m * x_stride), kNaN);  // padded copy
        for (int64_t t = 0; t < m; ++t) std::memcpy(&xp[t * x_stride], &x[t * k], k * sizeof(float));

        std::vector<float> want(static_cast<size_t>(m * n), kNaN);
        MatMulParams ref;
        ref.weight_type = qc.type;
        ref.weight = w.data();
        ref.weight_row_stride = w_stride;
        ref.rows = n;
        ref.cols = k;
        ref.input = x.data();
        ref.tokens = m;
        ref.output = want.data();
        ASSERT_TRUE(ReferenceMatMul(ref).ok());
        // Error scale of each output: sum |w * x| over the dequantised row.
        std::vector<float> wrow(static_cast<size_t>(k));
        std::vector<double> mag(static_cast<size_t>(m * n), 0.0);
        for (int64_t r = 0; r < n; ++r) {
          ASSERT_TRUE(DequantizeRow(qc.type, w.data() + r * w_stride, wrow.data(), k).ok());
          for (int64_t t = 0; t < m; ++t) {
            for (int64_t c = 0; c < k; ++c) mag[t * n + r] += std::fabs(double{wrow[c]} * x[t * k + c]);
          }
        }

        std::vector<float> y(static_cast<size_t>(m * y_stride), kNaN);
        QGemvParams p{qc.quant, w.data(), w_stride, n, k, xp.data(), x_stride, m, y.data(), y_stride};
        ASSERT_TRUE(HostRunQGemv(p).ok()) << qc.name;
        int bad = 0;
        for (int64_t t = 0; t < m; ++t) {
          for (int64_t r = 0; r < y_stride; ++r) {
            const float got = y[t * y_stride + r];
            const bool ok = r < n ? std::isfinite(got) && std::fabs(got - want[t * n + r]) <=
                                                              1e-5 * mag[t * n + r] + 1e-6
                                  : std::isnan(got);  // padding untouched
            if (!ok && ++bad <= 5) {
              ADD_FAILURE() << qc.name << " k " << k << " m " << m << " y[" << t << ", " << r << "] = " << got
                            << ", want " << (r < n ? want[t * n + r] : kNaN);
            }
          }
        }
        EXPECT_EQ(bad, 0) << qc.name << " k " << k << " m " << m;
      }
    }
  }
}

TEST(CudaGemmHostParity, QGemvRejectsBadParams) {
  std::vector<uint8_t> w(34 * 4);
  std::vector<float> x(64), y(4);
  QGemvParams p{WeightQuant::kQ8_0, w.data(), 68, 2, 64, x.data(), 64, 1, y.data(), 2};
  EXPECT_TRUE(HostRunQGemv(p).ok());
  QGemvParams bad = p;
  bad.m = 9;
  EXPECT_FALSE(HostRunQGemv(bad).ok());
  bad = p;
  bad.k = 48;  // not a multiple of 32
  EXPECT_FALSE(HostRunQGemv(bad).ok());
  bad = p;
  bad.w_row_stride = 67;
  EXPECT_FALSE(HostRunQGemv(bad).ok());
  bad = p;
  bad.quant = static_cast<WeightQuant>(12);  // Q4_K: not handled here
  EXPECT_FALSE(HostRunQGemv(bad).ok());
}

TEST(CudaGemmHostParity, ColumnEpilogueScalesAndAddsBias) {
  const int64_t rows = 5, cols = 67, stride = cols + 4;
  const std::vector<float> y0 = RandomNonZero(static_cast<size_t>(rows * stride), 21);
  const std::vector<float> scale = RandomNonZero(static_cast<size_t>(cols), 22, 0.001f, 0.1f);
  const std::vector<float> bias = RandomNonZero(static_cast<size_t>(cols), 23);
  for (bool use_scale : {true, false}) {
    for (bool use_bias : {true, false}) {
      if (!use_scale && !use_bias) continue;
      const float* s = use_scale ? scale.data() : nullptr;
      const float* b = use_bias ? bias.data() : nullptr;
      // F32: padding keeps its (random) values.
      std::vector<float> y = y0;
      ColumnEpilogueParams p{y.data(), EpilogueDtype::kF32, rows, cols, stride, s, b};
      ASSERT_TRUE(HostRunColumnEpilogue(p).ok());
      // BF16.
      std::vector<uint16_t> yb(y0.size());
      for (size_t i = 0; i < y0.size(); ++i) yb[i] = F32ToBF16(y0[i]);
      const std::vector<uint16_t> yb0 = yb;
      ColumnEpilogueParams pb{yb.data(), EpilogueDtype::kBF16, rows, cols, stride, s, b};
      ASSERT_TRUE(HostRunColumnEpilogue(pb).ok());
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < stride; ++c) {
          const int64_t i = r * stride + c;
          if (c >= cols) {
            EXPECT_EQ(y[i], y0[i]);
            EXPECT_EQ(yb[i], yb0[i]);
            continue;
          }
          float want = y0[i];
          float wantb = BF16ToF32(yb0[i]);
          if (s) want = want * s[c], wantb = wantb * s[c];
          if (b) want = want + b[c], wantb = wantb + b[c];
          ASSERT_EQ(y[i], want) << r << ", " << c;
          ASSERT_EQ(yb[i], F32ToBF16(wantb)) << r << ", " << c;
        }
      }
    }
  }
}

// What cuBLASLt computes for `plan`, read literally from its column-major fields
// (op(A) = A^T for transa = T, D[i + j * ldd] = alpha * a_scale * b_scale *
// sum_kk op(A)[i, kk] * B[kk, j]), on FP8 E4M3 codes; D stored as plan.d.dtype.
void EmulateCublasLtFp8(const CublasLtGemmPlan& plan, const uint8_t* a, const uint8_t* b, float a_scale,
                        float b_scale, void* d) {
  ASSERT_EQ(plan.transa, kCublasOpT);
  ASSERT_EQ(plan.transb, kCublasOpN);
  const double s = double{plan.alpha} * (plan.set_a_scale ? a_scale : 1.0f) * (plan.set_b_scale ? b_scale : 1.0f);
  for (int64_t j = 0; j < plan.n; ++j) {
    for (int64_t i = 0; i < plan.m; ++i) {
      double acc = 0;
      for (int64_t kk = 0; kk < plan.k; ++kk) {
        acc += double{E4M3ToF32(a[kk + i * plan.a.ld])} * E4M3ToF32(b[kk + j * plan.b.ld]);
      }
      const float v = static_cast<float>(s * acc);
      if (plan.d.dtype == GemmDtype::kF32) {
        static_cast<float*>(d)[i + j * plan.d.ld] = v;
      } else {
        static_cast<uint16_t*>(d)[i + j * plan.d.ld] = F32ToBF16(v);
      }
    }
  }
}

TEST(CudaGemmHostParity, Fp8PlanWithColumnEpilogueMatchesReferenceMatMul) {
  const int64_t m = 5, n = 40, k = 48, w_ld = 64, x_ld = 80, y_ld = 56;
  for (bool per_channel : {true, false}) {
    for (bool with_bias : {true, false}) {
      for (GemmDtype out : {GemmDtype::kF32, GemmDtype::kBF16}) {
        std::vector<float> wf = RandomNonZero(n * k, 41), xf = RandomNonZero(m * k, 42);
        const std::vector<float> bias = RandomNonZero(n, 43);
        std::vector<float> w_scale(per_channel ? n : 1, 0.0f);
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < k; ++c) {
            float& sc = w_scale[per_channel ? r : 0];
            sc = std::max(sc, std::fabs(wf[r * k + c]) / 448.0f);
          }
        }
        const float x_scale = 2.0f / 448.0f;
        std::vector<uint8_t> wq(n * w_ld, 0x7F), xq(m * x_ld, 0x7F);  // padding: NaN codes
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < k; ++c) {
            const float sc = w_scale[per_channel ? r : 0];
            wq[r * w_ld + c] = F32ToE4M3(wf[r * k + c] / sc);
            wf[r * k + c] = E4M3ToF32(wq[r * w_ld + c]) * sc;
          }
        }
        for (int64_t t = 0; t < m; ++t) {
          for (int64_t c = 0; c < k; ++c) {
            xq[t * x_ld + c] = F32ToE4M3(xf[t * k + c] / x_scale);
            xf[t * k + c] = E4M3ToF32(xq[t * x_ld + c]) * x_scale;
          }
        }
        std::vector<float> want(m * n, kNaN);
        MatMulParams ref;
        ref.weight = wf.data();
        ref.rows = n;
        ref.cols = k;
        ref.input = xf.data();
        ref.tokens = m;
        ref.output = want.data();
        ASSERT_TRUE(ReferenceMatMul(ref).ok());
        std::vector<double> mag(m * n, 0.0);
        for (int64_t t = 0; t < m; ++t) {
          for (int64_t r = 0; r < n; ++r) {
            if (with_bias) want[t * n + r] += bias[r];
            for (int64_t c = 0; c < k; ++c) mag[t * n + r] += std::fabs(double{wf[r * k + c]} * xf[t * k + c]);
          }
        }

        GemmRequest req;
        req.shape = {m, n, k};
        req.w_dtype = req.x_dtype = GemmDtype::kFp8E4M3;
        req.y_dtype = out;
        req.w_row_stride = w_ld;
        req.x_row_stride = x_ld;
        req.y_row_stride = y_ld * GemmDtypeBytes(out);
        req.has_bias = with_bias;
        req.scale_mode = per_channel ? Fp8ScaleMode::kPerChannel : Fp8ScaleMode::kPerTensor;
        absl::StatusOr<CublasLtGemmPlan> plan = PlanGemm(req);
        ASSERT_TRUE(plan.ok()) << plan.status();
        std::vector<float> yf(m * y_ld, kNaN);
        std::vector<uint16_t> yb(m * y_ld, kBf16NaN);
        void* y = out == GemmDtype::kF32 ? static_cast<void*>(yf.data()) : static_cast<void*>(yb.data());
        EmulateCublasLtFp8(*plan, wq.data(), xq.data(), w_scale[0], x_scale, y);
        ASSERT_EQ(plan->epilogue_kernel, per_channel || with_bias);
        if (plan->epilogue_kernel) {
          ASSERT_TRUE(HostRunColumnEpilogue(ColumnEpilogueFor(*plan, y, bias.data(), w_scale.data())).ok());
        }
        int bad = 0;
        for (int64_t t = 0; t < m; ++t) {
          for (int64_t r = 0; r < y_ld; ++r) {
            const float got = out == GemmDtype::kF32 ? yf[t * y_ld + r] : BF16ToF32(yb[t * y_ld + r]);
            bool ok;
            if (r >= n) {
              ok = std::isnan(got);  // padding untouched
            } else {
              // bf16 Y: the GEMM's value is rounded before the bias is added, so the
              // rounding error scales with |want - bias| <= |want| + |bias|.
              const double bf16_mag = std::fabs(want[t * n + r]) + (with_bias ? std::fabs(bias[r]) : 0.0);
              const double tol = 1e-5 * mag[t * n + r] + (out == GemmDtype::kBF16 ? 8e-3 * bf16_mag : 0.0);
              ok = std::isfinite(got) && std::fabs(got - want[t * n + r]) <= tol;
            }
            if (!ok && ++bad <= 5) {
              ADD_FAILURE() << (per_channel ? "per channel" : "per tensor") << (with_bias ? " + bias " : " ")
                            << GemmDtypeName(out) << " y[" << t << ", " << r << "] = " << got;
            }
          }
        }
        EXPECT_EQ(bad, 0);
      }
    }
  }
}

}  // namespace
}  // namespace strata::cuda
