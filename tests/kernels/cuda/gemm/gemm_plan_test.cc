// The cuBLASLt GEMM plan (kernels/cuda/gemm/gemm_plan.h), host only: the TN mapping
// of row-major Y = X . W^T onto column-major cuBLAS, descriptor fields per dtype
// combination, padded leading dimensions, FP8 scale modes and rejected requests.
#include "kernels/cuda/gemm/gemm_plan.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::cuda {
namespace {

using ::testing::HasSubstr;

GemmRequest Req(GemmDtype in, GemmDtype out, int64_t m, int64_t n, int64_t k) {
  GemmRequest r;
  r.shape = {m, n, k};
  r.w_dtype = in;
  r.x_dtype = in;
  r.y_dtype = out;
  if (in == GemmDtype::kFp8E4M3) r.scale_mode = Fp8ScaleMode::kPerTensor;
  return r;
}

void ExpectRejected(const GemmRequest& r, absl::StatusCode code, const std::string& text) {
  absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(r);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), code) << p.status();
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(text));
}

TEST(GemmPlan, Bf16IsTnWithSwappedMN) {
  absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(Req(GemmDtype::kBF16, GemmDtype::kF32, 7, 96, 64));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->transa, kCublasOpT);
  EXPECT_EQ(p->transb, kCublasOpN);
  EXPECT_EQ(p->m, 96);  // cuBLAS m = output features N
  EXPECT_EQ(p->n, 7);   // cuBLAS n = tokens M
  EXPECT_EQ(p->k, 64);
  // A = W stored K x N column-major, B = X stored K x M, D = Y stored N x M.
  EXPECT_EQ(p->a.dtype, GemmDtype::kBF16);
  EXPECT_EQ(p->a.rows, 64);
  EXPECT_EQ(p->a.cols, 96);
  EXPECT_EQ(p->a.ld, 64);
  EXPECT_EQ(p->b.rows, 64);
  EXPECT_EQ(p->b.cols, 7);
  EXPECT_EQ(p->b.ld, 64);
  EXPECT_EQ(p->d.dtype, GemmDtype::kF32);
  EXPECT_EQ(p->d.rows, 96);
  EXPECT_EQ(p->d.cols, 7);
  EXPECT_EQ(p->d.ld, 96);
  EXPECT_EQ(p->c.dtype, p->d.dtype);
  EXPECT_EQ(p->c.ld, p->d.ld);
  EXPECT_EQ(p->compute_type, kCublasCompute32F);
  EXPECT_EQ(p->scale_type, GemmDtype::kF32);
  EXPECT_EQ(p->alpha, 1.0f);
  EXPECT_EQ(p->beta, 0.0f);
  EXPECT_EQ(p->epilogue, kCublasLtEpilogueDefault);
  EXPECT_FALSE(p->set_a_scale);
  EXPECT_FALSE(p->set_b_scale);
  EXPECT_EQ(p->fast_accum, 0);
  EXPECT_FALSE(p->epilogue_kernel);
  EXPECT_EQ(p->pointer_alignment, 16);
  EXPECT_EQ(p->workspace_bytes, 32 << 20);
  // Packed strides resolved to bytes.
  EXPECT_EQ(p->request.w_row_stride, 128);
  EXPECT_EQ(p->request.x_row_stride, 128);
  EXPECT_EQ(p->request.y_row_stride, 96 * 4);
}

TEST(GemmPlan, PaddedStridesBecomeLeadingDimensionsInElements) {
  GemmRequest r = Req(GemmDtype::kBF16, GemmDtype::kBF16, 5, 33, 40);
  r.w_row_stride = 2 * 48;   // 48 elements
  r.x_row_stride = 2 * 56;   // 56 elements
  r.y_row_stride = 2 * 40;   // 40 elements
  absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(r);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->a.ld, 48);
  EXPECT_EQ(p->b.ld, 56);
  EXPECT_EQ(p->d.ld, 40);
  EXPECT_EQ(p->c.ld, 40);
  EXPECT_EQ(p->d.dtype, GemmDtype::kBF16);
}

TEST(GemmPlan, F16ToF32) {
  absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(Req(GemmDtype::kF16, GemmDtype::kF32, 3, 17, 8));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->a.dtype, GemmDtype::kF16);
  EXPECT_EQ(p->b.dtype, GemmDtype::kF16);
  EXPECT_EQ(p->d.dtype, GemmDtype::kF32);
}

TEST(GemmPlan, BiasFusedOnlyForSixteenBitInputsWithF32Output) {
  GemmRequest r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.has_bias = true;
  absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->epilogue, kCublasLtEpilogueBias);
  EXPECT_FALSE(p->epilogue_kernel);

  r.y_dtype = GemmDtype::kBF16;  // f32 bias on a bf16 D: our kernel adds it
  p = PlanGemm(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->epilogue, kCublasLtEpilogueDefault);
  EXPECT_TRUE(p->epilogue_kernel);
  EXPECT_TRUE(p->epilogue_bias);
  EXPECT_FALSE(p->epilogue_scale);
}

TEST(GemmPlan, Fp8PerTensorScalesInsideCublasLt) {
  for (GemmDtype out : {GemmDtype::kBF16, GemmDtype::kF32}) {
    GemmRequest r = Req(GemmDtype::kFp8E4M3, out, 16, 48, 32);
    absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(r);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->transa, kCublasOpT);
    EXPECT_EQ(p->transb, kCublasOpN);
    EXPECT_EQ(p->a.dtype, GemmDtype::kFp8E4M3);
    EXPECT_EQ(p->b.dtype, GemmDtype::kFp8E4M3);
    EXPECT_EQ(p->a.ld, 32);  // 1 byte per element
    EXPECT_EQ(p->d.dtype, out);
    EXPECT_EQ(p->compute_type, kCublasCompute32F);
    EXPECT_TRUE(p->set_a_scale);
    EXPECT_TRUE(p->set_b_scale);
    EXPECT_EQ(p->fast_accum, 1);
    EXPECT_FALSE(p->epilogue_kernel);
  }
  GemmRequest r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 32);
  r.fp8_fast_accum = false;
  EXPECT_EQ(PlanGemm(r)->fast_accum, 0);
  r.sm = 89;  // Ada has FP8 tensor cores
  EXPECT_TRUE(PlanGemm(r).ok());
}

TEST(GemmPlan, Fp8PerChannelScalesInTheColumnEpilogue) {
  GemmRequest r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 32);
  r.scale_mode = Fp8ScaleMode::kPerChannel;
  absl::StatusOr<CublasLtGemmPlan> p = PlanGemm(r);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->set_a_scale);  // A scale 1 inside cuBLASLt ...
  EXPECT_TRUE(p->set_b_scale);   // ... X's per-tensor scale still there
  EXPECT_TRUE(p->epilogue_kernel);
  EXPECT_TRUE(p->epilogue_scale);
  EXPECT_FALSE(p->epilogue_bias);
  EXPECT_EQ(p->epilogue, kCublasLtEpilogueDefault);

  r.has_bias = true;  // FP8 bias: after the channel scale, in the same kernel
  p = PlanGemm(r);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->epilogue_scale);
  EXPECT_TRUE(p->epilogue_bias);
  EXPECT_EQ(p->epilogue, kCublasLtEpilogueDefault);
}

TEST(GemmPlan, KeysDifferWhereCublasLtProblemsDiffer) {
  const GemmRequest base = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  const std::string k0 = PlanGemm(base)->key;
  EXPECT_EQ(PlanGemm(base)->key, k0);
  GemmRequest r = base;
  r.shape.m = 5;
  EXPECT_NE(PlanGemm(r)->key, k0);
  r = base;
  r.w_row_stride = 128;
  EXPECT_NE(PlanGemm(r)->key, k0);
  r = base;
  r.has_bias = true;
  EXPECT_NE(PlanGemm(r)->key, k0);
  r = base;
  r.y_dtype = GemmDtype::kBF16;
  EXPECT_NE(PlanGemm(r)->key, k0);
}

TEST(GemmPlan, RejectsFp8OnAmpere) {
  GemmRequest r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 32);
  r.sm = 80;
  ExpectRejected(r, absl::StatusCode::kFailedPrecondition, "FP8 tensor cores need sm_89+");
}

TEST(GemmPlan, RejectsFp8Misalignment) {
  ExpectRejected(Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 100), absl::StatusCode::kInvalidArgument,
                 "shape.k = 100 is not a multiple of 16");
  GemmRequest r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 32);
  r.w_row_stride = 40;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "w_row_stride = 40 bytes is not a multiple of 16");
  r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 32);
  r.x_row_stride = 36;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "x_row_stride = 36 bytes is not a multiple of 16");
  r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 49, 32);  // Y row 98 bytes
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "y_row_stride = 98 bytes is not a multiple of 16");
}

TEST(GemmPlan, RejectsBadCombinations) {
  GemmRequest r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.w_dtype = GemmDtype::kFp8E4M3;
  r.scale_mode = Fp8ScaleMode::kPerTensor;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "FP8 GEMM needs W and X both in FP8_E4M3");
  r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.x_dtype = GemmDtype::kF16;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "W and X must share one 16-bit dtype");
  ExpectRejected(Req(GemmDtype::kF16, GemmDtype::kBF16, 4, 32, 32), absl::StatusCode::kInvalidArgument,
                 "y_dtype BF16 with F16 inputs");
  ExpectRejected(Req(GemmDtype::kF32, GemmDtype::kF32, 4, 32, 32), absl::StatusCode::kInvalidArgument,
                 "w_dtype F32 is not BF16, F16 or FP8_E4M3");
  ExpectRejected(Req(GemmDtype::kBF16, GemmDtype::kF16, 4, 32, 32), absl::StatusCode::kInvalidArgument,
                 "y_dtype F16 is not F32 or BF16");
  r = Req(GemmDtype::kFp8E4M3, GemmDtype::kBF16, 16, 48, 32);
  r.scale_mode = Fp8ScaleMode::kNone;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "needs kPerTensor or kPerChannel");
  r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.scale_mode = Fp8ScaleMode::kPerTensor;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "scales apply to FP8 GEMMs only");
}

TEST(GemmPlan, RejectsBadShapesAndStrides) {
  ExpectRejected(Req(GemmDtype::kBF16, GemmDtype::kF32, -1, 32, 32), absl::StatusCode::kInvalidArgument,
                 "shape.m = -1");
  ExpectRejected(Req(GemmDtype::kBF16, GemmDtype::kF32, 1, 0, 32), absl::StatusCode::kInvalidArgument,
                 "shape.n = 0");
  ExpectRejected(Req(GemmDtype::kBF16, GemmDtype::kF32, 1, 32, 0), absl::StatusCode::kInvalidArgument,
                 "shape.k = 0");
  GemmRequest r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.w_row_stride = 62;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "w_row_stride = 62 bytes is less than a row (64 bytes)");
  r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.x_row_stride = 65;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "x_row_stride = 65 bytes is not a multiple of the BF16");
  r = Req(GemmDtype::kBF16, GemmDtype::kF32, 4, 32, 32);
  r.y_row_stride = 130;
  ExpectRejected(r, absl::StatusCode::kInvalidArgument, "y_row_stride = 130 bytes is not a multiple of the F32");
  // Zero tokens plan fine (the executor then does nothing).
  EXPECT_TRUE(PlanGemm(Req(GemmDtype::kBF16, GemmDtype::kF32, 0, 32, 32)).ok());
}

}  // namespace
}  // namespace strata::cuda
