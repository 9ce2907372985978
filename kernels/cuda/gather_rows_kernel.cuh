// Row gather: one block of 256 threads per dst row, copying float4s when cols and
// both rows allow (16-byte aligned), else floats.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/gather_rows_params.h"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline constexpr unsigned kGatherRowsThreads = 256;

inline const char* CheckGatherRows(const GatherRowsParams& p) {
  if (!p.src || !p.rows || !p.dst) return "GatherRows: null pointer";
  if (p.n_rows < 0 || p.cols < 0 || p.src_rows < 0) return "GatherRows: negative size";
  if (p.n_rows > 0x7fffffff) return "GatherRows: more than 2^31-1 rows";
  if ((p.src_stride != 0 && p.src_stride < p.cols) || (p.dst_stride != 0 && p.dst_stride < p.cols)) {
    return "GatherRows: src_stride or dst_stride < cols";
  }
  return nullptr;
}

inline KernelShape GatherRowsShape(const GatherRowsParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.n_rows)), dim3(kGatherRowsThreads), 0};
}

__global__ void __launch_bounds__(kGatherRowsThreads) GatherRowsKernel(GatherRowsParams p) {
  const int64_t r = blockIdx.x;
  const int64_t row = p.rows[r];
  float* dst = p.dst + r * (p.dst_stride ? p.dst_stride : p.cols);
  const bool dst16 = reinterpret_cast<uintptr_t>(dst) % 16 == 0 && p.cols % 4 == 0;
  if (row < 0 || row >= p.src_rows) {
    if (threadIdx.x == 0 && p.bad_rows) atomicAdd(p.bad_rows, 1);
    if (dst16) {
      float4* d4 = reinterpret_cast<float4*>(dst);
      const float4 zero{0.0f, 0.0f, 0.0f, 0.0f};
      for (int64_t i = threadIdx.x; i < p.cols / 4; i += blockDim.x) d4[i] = zero;
    } else {
      for (int64_t i = threadIdx.x; i < p.cols; i += blockDim.x) dst[i] = 0.0f;
    }
    return;
  }
  const float* src = p.src + row * (p.src_stride ? p.src_stride : p.cols);
  if (dst16 && reinterpret_cast<uintptr_t>(src) % 16 == 0) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (int64_t i = threadIdx.x; i < p.cols / 4; i += blockDim.x) d4[i] = s4[i];
  } else {
    for (int64_t i = threadIdx.x; i < p.cols; i += blockDim.x) dst[i] = src[i];
  }
}

}  // namespace strata::cuda
