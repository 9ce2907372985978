// Planning of a dense GEMM on cuBLASLt, in plain C++ (no CUDA headers), so every
// descriptor choice is unit-tested on machines without a GPU.
//
//   Y[M, N] = X[M, K] . W[N, K]^T  (+ bias[N])       all row-major, strided
//
// W is a model weight as worker/model/model_weights.h stores it (rows = N output
// features, cols = K input features), X the activations, Y the output.
//
// cuBLAS is column-major. A row-major [R, C] matrix with row stride ld is the
// column-major [C, R] matrix with leading dimension ld, so row-major Y = X . W^T is
// column-major Y^T = W^T' . X^T' with no copy:
//
//          cuBLAS name   op      stored (col-major)     leading dim
//   A  =   W             T       K x N                  lda = W row stride (elements)
//   B  =   X             N       K x M                  ldb = X row stride
//   D  =   Y             -       N x M                  ldd = Y row stride
//   m = N, n = M, k = K      ("TN": the only layout FP8 tensor cores take on Hopper)
//
// FP8 scales (E4M3 values are codes; real value = scale * e4m3(code)):
//   kPerTensor:  A_SCALE_POINTER = w_scale (1 f32), B_SCALE_POINTER = x_scale (1 f32),
//                both device pointers, applied inside cuBLASLt.
//   kPerChannel: w_scale is a device vector[N]. cuBLASLt 12.9+ has OUTER_VEC_32F scales,
//                but it takes them on A and B together (an M-vector for X too) and
//                only on sm_90+; we plan the portable path instead: the GEMM runs
//                with A scale 1 and B scale x_scale, then the column epilogue kernel
//                (column_epilogue_params.h) multiplies column n of Y by w_scale[n].
// Bias: fused into cuBLASLt (CUBLASLT_EPILOGUE_BIAS, f32 bias = D's type) only for
// 16-bit inputs with an f32 Y; otherwise (FP8, or a BF16 Y with our f32 bias) the
// column epilogue kernel adds it, after the channel scale.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/cuda/gemm/column_epilogue_params.h"
#include "kernels/cuda/gemm/gemm_operands.h"

namespace strata::cuda {

// Element types, with cudaDataType_t's numeric values (checked by static_assert
// where cuBLASLt's headers are included: cublaslt_gemm.cc).
enum class GemmDtype : int32_t {
  kF32 = 0,       // CUDA_R_32F
  kF16 = 2,       // CUDA_R_16F
  kBF16 = 14,     // CUDA_R_16BF
  kFp8E4M3 = 28,  // CUDA_R_8F_E4M3
};

enum class Fp8ScaleMode : int32_t {
  kNone,        // 16-bit inputs
  kPerTensor,   // one f32 for W, one for X
  kPerChannel,  // f32 per output feature for W, one f32 for X
};

const char* GemmDtypeName(GemmDtype t);
int64_t GemmDtypeBytes(GemmDtype t);

struct GemmShape {
  int64_t m = 0;  // rows of X and Y (tokens)
  int64_t n = 0;  // output features (rows of W, columns of Y)
  int64_t k = 0;  // input features
};

struct GemmRequest {
  GemmShape shape;
  GemmDtype w_dtype = GemmDtype::kBF16;
  GemmDtype x_dtype = GemmDtype::kBF16;
  GemmDtype y_dtype = GemmDtype::kF32;
  int64_t w_row_stride = 0;  // bytes; 0 means K * element size
  int64_t x_row_stride = 0;  // bytes; 0 means K * element size
  int64_t y_row_stride = 0;  // bytes; 0 means N * element size
  bool has_bias = false;     // f32 device vector [N]
  Fp8ScaleMode scale_mode = Fp8ScaleMode::kNone;
  // FP8 only: CUBLASLT_MATMUL_DESC_FAST_ACCUM (no periodic promotion of the
  // tensor-core accumulator; faster on Hopper, what inference engines use).
  bool fp8_fast_accum = true;
  int sm = 90;  // compute capability of the device, major * 10 + minor
  int64_t max_workspace_bytes = 32 << 20;
};

// cublasOperation_t / cublasComputeType_t / cublasLtEpilogue_t values (checked as above).
inline constexpr int32_t kCublasOpN = 0;
inline constexpr int32_t kCublasOpT = 1;
inline constexpr int32_t kCublasCompute32F = 68;
inline constexpr int32_t kCublasLtEpilogueDefault = 1;
inline constexpr int32_t kCublasLtEpilogueBias = 4;

// Column-major description of one matrix (cublasLtMatrixLayoutCreate's arguments).
struct MatrixLayoutPlan {
  GemmDtype dtype = GemmDtype::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;  // elements
};

// Everything cuBLASLt needs for one GEMM, and what runs after it.
struct CublasLtGemmPlan {
  GemmRequest request;  // as given, strides resolved to bytes
  int32_t transa = kCublasOpT;
  int32_t transb = kCublasOpN;
  int64_t m = 0, n = 0, k = 0;  // cuBLAS's (m = N, n = M)
  MatrixLayoutPlan a, b, c, d;  // c == d (beta = 0; C is never read)
  int32_t compute_type = kCublasCompute32F;
  GemmDtype scale_type = GemmDtype::kF32;  // of alpha/beta and the FP8 scales
  float alpha = 1.0f;
  float beta = 0.0f;
  int32_t epilogue = kCublasLtEpilogueDefault;  // bias fused into cuBLASLt when kBias
  bool set_a_scale = false;   // A_SCALE_POINTER = w_scale (FP8 per tensor)
  bool set_b_scale = false;   // B_SCALE_POINTER = x_scale (FP8)
  int32_t fast_accum = 0;     // CUBLASLT_MATMUL_DESC_FAST_ACCUM
  // The column epilogue kernel after the GEMM: y[:, n] = y[:, n] * w_scale[n] + bias[n].
  bool epilogue_kernel = false;
  bool epilogue_scale = false;  // multiply by w_scale[n] (per channel)
  bool epilogue_bias = false;   // add bias[n]
  int32_t pointer_alignment = 16;  // bytes, every operand (preference MIN_ALIGNMENT_*)
  int64_t workspace_bytes = 0;
  // Identifies the cuBLASLt problem (types, sizes, leading dims, attributes) for the
  // executor's algorithm cache.
  std::string key;
};

// INVALID_ARGUMENT naming the offending field for bad shapes, strides, unsupported
// dtype combinations and FP8 alignment; FAILED_PRECONDITION for FP8 below sm_89.
absl::StatusOr<CublasLtGemmPlan> PlanGemm(const GemmRequest& request);

// INVALID_ARGUMENT when `ops` cannot serve `plan`: a null w, x or y, one not
// plan.pointer_alignment-aligned, a missing bias or FP8 scale the plan reads.
// The executor and its host emulation both check this first.
absl::Status CheckGemmOperands(const CublasLtGemmPlan& plan, const GemmOperands& ops);

// The column epilogue that follows the cuBLASLt call of `plan` (valid only when
// plan.epilogue_kernel): in place on y, scale = w_scale when per channel, bias when
// not fused. Pointers are the GEMM's operands (device pointers on the GPU).
ColumnEpilogueParams ColumnEpilogueFor(const CublasLtGemmPlan& plan, void* y, const float* bias,
                                       const float* w_scale);

}  // namespace strata::cuda
