// Weight-only quantised GEMV / skinny GEMM (m <= 8): one warp per output row, four
// warps per CTA. Lane l takes blocks l, l + 32, ... of the row: it decodes the block's
// 32 weights into registers (qblock.cuh) and multiplies them with the same 32 inputs
// of each token row, accumulating in f32; a warp shuffle reduction ends the row.
//
//   row r:  | blk 0 | blk 1 | ... | blk 31 | blk 32 | ...      lane = blk % 32
//
// Adjacent lanes read adjacent blocks, so a warp streams 32 consecutive blocks of the
// row (1088 B for Q8_0) per iteration. The inputs (m x k f32, at most 8 rows) stay in
// L1/L2 and are shared by every row.
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
  float acc[kQGemvMaxM];
STRATA_GEMM_UNROLL
  for (int t = 0; t < kQGemvMaxM; ++t) acc[t] = 0.0f;
  for (int64_t b = lane; b < nb; b += 32) {
    float w[kWeightQuantBlock];
    QDecodeBlock(wrow + b * bb, p.quant, w);
STRATA_GEMM_UNROLL
    for (int t = 0; t < kQGemvMaxM; ++t) {
      if (t < p.m) {
        const float* x = p.x + t * p.x_stride + b * kWeightQuantBlock;
        float s = 0.0f;
STRATA_GEMM_UNROLL
        for (int j = 0; j < kWeightQuantBlock; ++j) s += w[j] * x[j];
        acc[t] += s;
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
