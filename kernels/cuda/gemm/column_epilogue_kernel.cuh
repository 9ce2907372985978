// Column epilogue: a grid-stride loop over the elements of Y, one thread per element.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/gemm/column_epilogue_params.h"
#include "kernels/cuda/gemm/qblock.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr unsigned kColumnEpilogueThreads = 256;
inline constexpr int64_t kColumnEpilogueMaxBlocks = 16384;

inline const char* CheckColumnEpilogue(const ColumnEpilogueParams& p) {
  if (p.dtype != EpilogueDtype::kF32 && p.dtype != EpilogueDtype::kBF16) {
    return "ColumnEpilogue: dtype is not f32 or bf16";
  }
  if (!p.y) return "ColumnEpilogue: null y";
  if (p.rows < 0 || p.cols < 0) return "ColumnEpilogue: negative rows or cols";
  if (p.y_stride < p.cols) return "ColumnEpilogue: y_stride < cols";
  return nullptr;
}

inline KernelShape ColumnEpilogueShape(const ColumnEpilogueParams& p) {
  const int64_t total = p.rows * p.cols;
  int64_t blocks = (total + kColumnEpilogueThreads - 1) / kColumnEpilogueThreads;
  if (blocks > kColumnEpilogueMaxBlocks) blocks = kColumnEpilogueMaxBlocks;
  if (blocks < 1) blocks = 1;
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(kColumnEpilogueThreads), 0};
}

__global__ void __launch_bounds__(kColumnEpilogueThreads) ColumnEpilogueKernel(ColumnEpilogueParams p) {
  const int64_t total = p.rows * p.cols;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const int64_t r = e / p.cols, c = e % p.cols;
    const int64_t i = r * p.y_stride + c;
    float v = p.dtype == EpilogueDtype::kF32 ? static_cast<float*>(p.y)[i]
                                             : KvBF16ToF32(static_cast<uint16_t*>(p.y)[i]);
    if (p.scale) v = QMul(v, p.scale[c]);
    if (p.bias) v = QAdd(v, p.bias[c]);
    if (p.dtype == EpilogueDtype::kF32) {
      static_cast<float*>(p.y)[i] = v;
    } else {
      static_cast<uint16_t*>(p.y)[i] = KvF32ToBF16(v);
    }
  }
}

}  // namespace strata::cuda
