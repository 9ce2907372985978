// Weight-only quantised GEMV / skinny GEMM (m <= 8): one warp per output row, four
// warps per CTA. Each half-warp takes one 32-value block at a time (half-warp h of
// the warp: blocks h, h + 2, h + 4, ...); lane l < 16 of the half-warp dequantises
// its two values in registers (qblock.cuh QBlockPair) and multiplies them with the
// same two inputs of each token row, accumulating in f32. A warp shuffle reduction
// ends the row.
//
//   row r:  | blk 0 | blk 1 | blk 2 | blk 3 | ...     half-warp = blk % 2
//   blk:    | d | qs ...... |   lanes 0..15 read qs as one contiguous run
//
// So a warp streams two consecutive blocks (68 B of Q8_0) per iteration with
// coalesced 16-bit loads, and the matching inputs (m x k f32, at most 8 rows, shared
// by every row: L1/L2 resident) with coalesced 64 B loads per half-warp.
#pragma once

#include <cstdint>

#include "kernels/cuda/gemm/qblock.cuh"
#include "kernels/cuda/gemm/qgemv_params.h"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr unsigned kQGemvWarps = 4;

inline const char* CheckQGemv(const QGemvParams& p) {
  if (const char* why = CheckQuantWeight(p.quant, p.w, p.w_row_stride, p.n, p.k)) return why;
  if (p.m < 0 || p.m > kQGemvMaxM) return "QGemv: m outside [0, 8]";
  if (!p.x || !p.y) return "QGemv: null x or y";
  if (p.x_stride < p.k) return "QGemv: x_stride < k";
  if (p.y_stride < p.n) return "QGemv: y_stride < n";
  if ((p.n + kQGemvWarps - 1) / kQGemvWarps > 0x7fffffff) return "QGemv: n too large";
  return nullptr;
}

inline KernelShape QGemvShape(const QGemvParams& p) {
  const int64_t blocks = (p.n + kQGemvWarps - 1) / kQGemvWarps;
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(32 * kQGemvWarps), 0};
}

__global__ void __launch_bounds__(32 * kQGemvWarps) QGemvKernel(QGemvParams p) {
  const int warp = static_cast<int>(threadIdx.x / 32);
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kQGemvWarps + warp;
  if (row >= p.n) return;  // the whole warp leaves: no collective is missed
  const int64_t bb = WeightQuantBlockBytes(p.quant);
  const uint8_t* wrow = static_cast<const uint8_t*>(p.w) + row * p.w_row_stride;
  const int64_t nb = p.k / kWeightQuantBlock;
  const int half = lane / 16, l = lane % 16;
  float acc[kQGemvMaxM];
  STRATA_GEMM_UNROLL
  for (int t = 0; t < kQGemvMaxM; ++t) acc[t] = 0.0f;
  for (int64_t b = half; b < nb; b += 2) {
    const QPair w = QBlockPair(wrow + b * bb, p.quant, l);
    const float* x = p.x + b * kWeightQuantBlock;
    STRATA_GEMM_UNROLL
    for (int t = 0; t < kQGemvMaxM; ++t) {
      if (t < p.m) {
        const float* xt = x + t * p.x_stride;
        acc[t] += w.w0 * xt[w.e0] + w.w1 * xt[w.e1];
      }
    }
  }
  STRATA_GEMM_UNROLL
  for (int t = 0; t < kQGemvMaxM; ++t) {
    if (t < p.m) {  // uniform over the warp
      float v = acc[t];
      STRATA_GEMM_UNROLL
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) p.y[t * p.y_stride + row] = v;
    }
  }
}

}  // namespace strata::cuda
