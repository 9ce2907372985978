// F16 KV-cache write: one block per token, threads over (kv head, dim).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/kv_write_f16_params.h"

#ifdef __CUDACC__
#include <cuda_fp16.h>
#else
#include "kernels/cpu/float16.h"
#endif

namespace strata::cuda {

// f32 -> f16 bits, round to nearest even: the device intrinsic under nvcc, the CPU
// reference conversion on the host harness (the device parity test compares the two).
__device__ __forceinline__ uint16_t F32ToF16Bits(float f) {
#ifdef __CUDACC__
  return __half_as_ushort(__float2half_rn(f));
#else
  return ::strata::F32ToF16(f);
#endif
}

inline const char* CheckKvWriteF16(const KvWriteF16Params& p) {
  const PagedKvView& kv = p.kv;
  if (kv.dtype != KvDtype::kF16) return "KvWriteF16: view dtype is not f16";
  if (!kv.k || !kv.v || !kv.block_tables || !p.k || !p.v || !p.token_seq || !p.positions) {
    return "KvWriteF16: null pointer";
  }
  if (kv.num_blocks <= 1 || kv.block_size <= 0 || kv.n_kv_heads <= 0 || kv.head_dim <= 0 ||
      kv.max_blocks_per_seq <= 0 || kv.n_seqs < 0 || p.tokens < 0) {
    return "KvWriteF16: bad shape";
  }
  const int64_t row = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
  if (p.k_stride < row || p.v_stride < row) return "KvWriteF16: k/v stride < n_kv_heads*head_dim";
  if (p.tokens > 0x7fffffff) return "KvWriteF16: more than 2^31-1 tokens";
  return nullptr;
}

inline KernelShape KvWriteF16Shape(const KvWriteF16Params& p) {
  return KernelShape{dim3(static_cast<unsigned>(p.tokens)), dim3(128), 0};
}

__global__ void KvWriteF16Kernel(KvWriteF16Params p) {
  const PagedKvView& kv = p.kv;
  const int64_t t = blockIdx.x;
  const int32_t s = p.token_seq[t];
  const int32_t pos = p.positions[t];
  int32_t block = -1;
  if (s >= 0 && s < kv.n_seqs && pos >= 0 && pos / kv.block_size < kv.max_blocks_per_seq) {
    block = kv.block_tables[static_cast<int64_t>(s) * kv.max_blocks_per_seq + pos / kv.block_size];
  }
  if (block <= 0 || block >= kv.num_blocks) {  // uniform over the block: no barrier after
    if (threadIdx.x == 0 && p.bad_tokens) atomicAdd(p.bad_tokens, 1);
    return;
  }
  const int64_t slot = pos % kv.block_size;
  uint16_t* kd = static_cast<uint16_t*>(kv.k);
  uint16_t* vd = static_cast<uint16_t*>(kv.v);
  const int64_t n = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t h = i / kv.head_dim, d = i % kv.head_dim;
    // ((block * n_kv_heads + h) * block_size + slot) * head_dim + d: PagedKvView::Offset.
    const int64_t off = ((block * static_cast<int64_t>(kv.n_kv_heads) + h) * kv.block_size + slot) *
                            kv.head_dim + d;
    kd[off] = F32ToF16Bits(p.k[t * p.k_stride + i]);
    vd[off] = F32ToF16Bits(p.v[t * p.v_stride + i]);
  }
}

}  // namespace strata::cuda
