// Weight dequantisation to BF16: a grid-stride loop over the elements, one thread per
// output element (consecutive threads write consecutive bf16 of a row: coalesced).
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/gemm/dequant_bf16_params.h"
#include "kernels/cuda/gemm/qblock.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr unsigned kDequantBf16Threads = 256;
inline constexpr int64_t kDequantBf16MaxBlocks = 16384;

inline const char* CheckDequantBf16(const DequantBf16Params& p) {
  if (const char* why = CheckQuantWeight(p.quant, p.src, p.src_row_stride, p.rows, p.cols)) {
    return why;
  }
  if (!p.dst) return "DequantBf16: null dst";
  if (p.dst_row_stride < p.cols) return "DequantBf16: dst_row_stride < cols";
  return nullptr;
}

inline KernelShape DequantBf16Shape(const DequantBf16Params& p) {
  const int64_t total = p.rows * p.cols;
  int64_t blocks = (total + kDequantBf16Threads - 1) / kDequantBf16Threads;
  if (blocks > kDequantBf16MaxBlocks) blocks = kDequantBf16MaxBlocks;
  if (blocks < 1) blocks = 1;
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(kDequantBf16Threads), 0};
}

__global__ void __launch_bounds__(kDequantBf16Threads) DequantBf16Kernel(DequantBf16Params p) {
  const int64_t total = p.rows * p.cols;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t bb = WeightQuantBlockBytes(p.quant);
  const uint8_t* src = static_cast<const uint8_t*>(p.src);
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const int64_t r = e / p.cols, c = e % p.cols;
    const uint8_t* blk = src + r * p.src_row_stride + (c / kWeightQuantBlock) * bb;
    const float v = QBlockValue(blk, p.quant, static_cast<int>(c % kWeightQuantBlock));
    p.dst[r * p.dst_row_stride + c] = KvF32ToBF16(v);
  }
}

}  // namespace strata::cuda
