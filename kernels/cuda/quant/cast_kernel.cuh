// Element-wise casts (cast_params.h): a grid-stride loop over groups of 4 elements
// (float4 / 8-byte loads and stores when both pointers are 16-byte aligned), the
// remaining n % 4 elements (or all of them, unaligned) one by one.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/quant/cast_params.h"

namespace strata::cuda {

inline constexpr int kCastThreads = 256;
inline constexpr int64_t kCastMaxBlocks = 4096;

// f32 -> IEEE half bits, round to nearest even: the CPU reference's algorithm
// (kernels/cpu/float16.h F32ToF16) for host and device, so NaN payloads match too
// (the device intrinsic __float2half_rn returns a different NaN).
__host__ __device__ __forceinline__ uint16_t CastF32ToF16(float f) {
  const uint32_t x = KvF32ToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (ax >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65536: inf
  if (ax < 0x38800000u) {  // below the smallest normal half: units of 2^-24
    const float scaled = KvBitsToF32(ax) * 16777216.0f;  // exact
    const uint32_t n = static_cast<uint32_t>(scaled);
    const float frac = scaled - static_cast<float>(n);
    const uint32_t r = n + ((frac > 0.5f || (frac == 0.5f && (n & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = (ax >> 13) - (112u << 10);
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into inf is right
  return static_cast<uint16_t>(sign | h);
}

inline const char* CheckCast(const CastParams& p) {
  if (p.kind != CastKind::kF32ToBF16 && p.kind != CastKind::kF32ToF16 &&
      p.kind != CastKind::kBF16ToF32) {
    return "Cast: unknown kind";
  }
  if (p.n < 0) return "Cast: negative n";
  if (p.n > 0 && (!p.in || !p.out)) return "Cast: null pointer";
  return nullptr;
}

inline KernelShape CastShape(const CastParams& p) {
  const int64_t groups = (p.n + 3) / 4;
  int64_t blocks = (groups + kCastThreads - 1) / kCastThreads;
  blocks = blocks < 1 ? 1 : (blocks > kCastMaxBlocks ? kCastMaxBlocks : blocks);
  return KernelShape{dim3(static_cast<unsigned>(blocks)), dim3(kCastThreads), 0};
}

__device__ __forceinline__ uint16_t CastTo16(float x, bool to_f16) {
  return to_f16 ? CastF32ToF16(x) : KvF32ToBF16(x);
}

__global__ void __launch_bounds__(kCastThreads) CastKernel(CastParams p) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const bool aligned = (reinterpret_cast<uintptr_t>(p.in) % 16u) == 0 &&
                       (reinterpret_cast<uintptr_t>(p.out) % 16u) == 0;
  const int64_t groups = aligned ? p.n / 4 : 0;
  if (p.kind == CastKind::kBF16ToF32) {
    const uint16_t* in = static_cast<const uint16_t*>(p.in);
    float* out = static_cast<float*>(p.out);
    for (int64_t g = first; g < groups; g += stride) {
      const uint64_t b = reinterpret_cast<const uint64_t*>(in)[g];  // 4 bf16, element 0 lowest
      float4 v;
      v.x = KvBF16ToF32(static_cast<uint16_t>(b));
      v.y = KvBF16ToF32(static_cast<uint16_t>(b >> 16));
      v.z = KvBF16ToF32(static_cast<uint16_t>(b >> 32));
      v.w = KvBF16ToF32(static_cast<uint16_t>(b >> 48));
      reinterpret_cast<float4*>(out)[g] = v;
    }
    for (int64_t i = groups * 4 + first; i < p.n; i += stride) out[i] = KvBF16ToF32(in[i]);
    return;
  }
  const bool to_f16 = p.kind == CastKind::kF32ToF16;
  const float* in = static_cast<const float*>(p.in);
  uint16_t* out = static_cast<uint16_t*>(p.out);
  for (int64_t g = first; g < groups; g += stride) {
    const float4 v = reinterpret_cast<const float4*>(in)[g];
    const uint64_t b = static_cast<uint64_t>(CastTo16(v.x, to_f16)) |
                       static_cast<uint64_t>(CastTo16(v.y, to_f16)) << 16 |
                       static_cast<uint64_t>(CastTo16(v.z, to_f16)) << 32 |
                       static_cast<uint64_t>(CastTo16(v.w, to_f16)) << 48;
    reinterpret_cast<uint64_t*>(out)[g] = b;
  }
  for (int64_t i = groups * 4 + first; i < p.n; i += stride) out[i] = CastTo16(in[i], to_f16);
}

}  // namespace strata::cuda
