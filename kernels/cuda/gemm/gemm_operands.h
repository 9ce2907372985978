// The operands of one planned GEMM (gemm_plan.h): device pointers for the cuBLASLt
// executor (cublaslt_gemm.h), host pointers for its host emulation
// (host/host_ops.h, HostRunGemm). Plain C++: no CUDA headers.
#pragma once

namespace strata::cuda {

// All 16-byte aligned.
struct GemmOperands {
  const void* w = nullptr;          // plan's w_dtype, [N, w_row_stride]
  const void* x = nullptr;          // plan's x_dtype, [M, x_row_stride]
  void* y = nullptr;                // plan's y_dtype, [M, y_row_stride]
  const float* bias = nullptr;      // [N], required iff request.has_bias
  const float* w_scale = nullptr;   // FP8: 1 f32 (per tensor) or [N] (per channel)
  const float* x_scale = nullptr;   // FP8: 1 f32
};

}  // namespace strata::cuda
