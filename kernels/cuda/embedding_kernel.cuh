// Embedding lookup: one block per token, 256 threads copying the row as float4 when
// both rows are 16-byte aligned, else as floats.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/embedding_params.h"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"

namespace strata::cuda {

inline const char* CheckEmbedding(const EmbeddingParams& p) {
  if (!p.table || !p.ids || !p.out) return "Embedding: null pointer";
  if (p.tokens < 0 || p.vocab <= 0 || p.dim <= 0) return "Embedding: bad shape";
  if (p.out_stride != 0 && p.out_stride < p.dim) return "Embedding: out_stride < dim";
  if (p.tokens > 0x7fffffff) return "Embedding: more than 2^31-1 tokens";
  return nullptr;
}

inline KernelShape EmbeddingShape(const EmbeddingParams& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.tokens)), dim3(256), 0};
}

__global__ void EmbeddingKernel(EmbeddingParams p) {
  const int64_t t = blockIdx.x;
  const int64_t id = p.ids[t];
  if (id < 0 || id >= p.vocab) {
    if (threadIdx.x == 0 && p.bad_ids) atomicAdd(p.bad_ids, 1);
    return;
  }
  const int64_t stride = p.out_stride ? p.out_stride : p.dim;
  const float* src = p.table + id * p.dim;
  float* dst = p.out + t * stride;
  const bool vec = p.dim % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (vec) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (int64_t i = threadIdx.x; i < p.dim / 4; i += blockDim.x) d4[i] = s4[i];
  } else {
    for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) dst[i] = src[i];
  }
}

}  // namespace strata::cuda
