// Warp-level tensor-core building blocks (mma.sync, ldmatrix, cp.async) with host
// harness emulations. One warp-wide tensor-core step, D[16x8] += A[16x16] * B[16x8]
// (bf16 in, f32 accumulate): PTX mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 on sm_80+,
// and on the host harness an emulation that runs the SAME fragment layout.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .bf16), for
// lane = 4 * group + tig (group = lane >> 2, tig = lane & 3):
//
//   A (16x16, row-major), 4 x .b32 = 8 bf16 a0..a7, element i:
//     row = group + 8 * ((i >> 1) & 1)      col = 2 * tig + (i & 1) + 8 * (i >> 2)
//   B (16x8, "col": K x N), 2 x .b32 = 4 bf16 b0..b3, element i:
//     row (k) = 2 * tig + (i & 1) + 8 * (i >> 1)    col (n) = group
//   C/D (16x8, f32), 4 floats c0..c3, element i:
//     row = group + 8 * (i >> 1)            col = 2 * tig + (i & 1)
//
// In a .b32 register the element with the even index is the low 16 bits.
// FlashAttention's register trick follows: the C fragments of two adjacent n8 blocks
// (columns 0..7 and 8..15) ARE the A fragment of one k16 step, element i of A being
// element MmaAFromCElem(i) of block MmaAFromCBlock(i) (tested on the host).
//
// The harness (no tensor cores, no inline PTX) emulates Mma16816: every lane scatters
// its A and B elements into a per-warp scratch through the functions below, the warp
// meets, every lane computes its own C elements (exact bf16 products, f32 sums in k
// order) and the warp meets again. So the kernel code path, and the lane/register
// ownership it relies on, is the same on both; only the summation order of the 16
// products may differ from the hardware. ldmatrix.x4.trans is emulated the same way
// (an exchange of the lanes' row addresses); cp.async is a plain copy on the harness,
// so the harness checks what is copied where, not the commit/wait placement.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention/kv_codec.cuh"
#include "kernels/cuda/harness/cuda_compat.h"

#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

// `#pragma unroll` for nvcc only (g++ warns about pragmas it does not know).
#ifdef __CUDACC__
#define STRATA_PREFILL_UNROLL _Pragma("unroll")
#else
#define STRATA_PREFILL_UNROLL
#endif

namespace strata::cuda {

__host__ __device__ __forceinline__ constexpr int MmaARow(int lane, int i) { return (lane >> 2) + 8 * ((i >> 1) & 1); }
__host__ __device__ __forceinline__ constexpr int MmaACol(int lane, int i) {
  return 2 * (lane & 3) + (i & 1) + 8 * (i >> 2);
}
__host__ __device__ __forceinline__ constexpr int MmaBRow(int lane, int i) {
  return 2 * (lane & 3) + (i & 1) + 8 * (i >> 1);
}
__host__ __device__ __forceinline__ constexpr int MmaBCol(int lane, int /*i*/) { return lane >> 2; }
__host__ __device__ __forceinline__ constexpr int MmaCRow(int lane, int i) { return (lane >> 2) + 8 * (i >> 1); }
__host__ __device__ __forceinline__ constexpr int MmaCCol(int lane, int i) { return 2 * (lane & 3) + (i & 1); }
// Which 8-row half (0: rows 0..7, 1: rows 8..15) element i lies in: lane-independent,
// so a kernel can pick the per-row state of element i at compile time.
__host__ __device__ __forceinline__ constexpr int MmaARowHalf(int i) { return (i >> 1) & 1; }
__host__ __device__ __forceinline__ constexpr int MmaCRowHalf(int i) { return i >> 1; }
// A element i taken from the C fragments of n8 blocks 2k (cols 0..7), 2k+1 (8..15).
__host__ __device__ __forceinline__ constexpr int MmaAFromCBlock(int i) { return i >> 2; }
__host__ __device__ __forceinline__ constexpr int MmaAFromCElem(int i) { return i & 3; }

// f32 -> bf16 bits, round to nearest even (the device conversion, the codec's on the host).
__device__ __forceinline__ uint16_t F32ToBf16Bits(float f) {
#ifdef __CUDA_ARCH__
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
#else
  return KvF32ToBF16(f);
#endif
}

// Two floats as one .bf16x2 register: `lo` (even element) in the low 16 bits.
__device__ __forceinline__ uint32_t PackBf16x2(float lo, float hi) {
  return static_cast<uint32_t>(F32ToBf16Bits(lo)) | (static_cast<uint32_t>(F32ToBf16Bits(hi)) << 16);
}

// d[4] += A * B for the whole warp; every lane of the warp must call it together.
__device__ __forceinline__ void Mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__)
#if __CUDA_ARCH__ < 800
#error "Mma16816 needs sm_80 or newer"
#endif
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif !defined(__CUDACC__)
  // Host harness: one scratch per warp of the running block (blocks run one at a time).
  __shared__ float a_s[32][16][16];
  __shared__ float b_s[32][16][8];
  const uint3 t = threadIdx;
  const dim3 bd = blockDim;
  const int linear = static_cast<int>(t.x + t.y * bd.x + t.z * bd.x * bd.y);
  const int warp = linear / 32, lane = linear % 32;
  for (int i = 0; i < 8; ++i) {
    const uint16_t bits = static_cast<uint16_t>(a[i >> 1] >> (16 * (i & 1)));
    a_s[warp][MmaARow(lane, i)][MmaACol(lane, i)] = KvBF16ToF32(bits);
  }
  for (int i = 0; i < 4; ++i) {
    const uint16_t bits = static_cast<uint16_t>(b[i >> 1] >> (16 * (i & 1)));
    b_s[warp][MmaBRow(lane, i)][MmaBCol(lane, i)] = KvBF16ToF32(bits);
  }
  __syncwarp();
  float out[4];
  for (int i = 0; i < 4; ++i) {
    float acc = d[i];
    for (int k = 0; k < 16; ++k) acc += a_s[warp][MmaCRow(lane, i)][k] * b_s[warp][k][MmaCCol(lane, i)];
    out[i] = acc;
  }
  __syncwarp();  // the scratch is reused by the next call
  for (int i = 0; i < 4; ++i) d[i] = out[i];
#endif
}

// ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16: four 8x8 b16 matrices from shared
// memory, lane 8 * i + j giving the address of row j of matrix i (16 contiguous
// bytes, 16-byte aligned). With .trans, register i of lane t holds the elements
// (row 2 * (t % 4) + e, col t / 4), e = 0 (low half) and 1 (high half), of matrix i:
// for a row-major [k][n] matrix that is exactly the B fragment of MmaBRow/MmaBCol
// (tested on the host). The harness emulates it through a per-warp address exchange.
__host__ __device__ __forceinline__ constexpr int LdmTransRow(int lane, int e) { return 2 * (lane & 3) + e; }
__host__ __device__ __forceinline__ constexpr int LdmTransCol(int lane, int /*e*/) { return lane >> 2; }

__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const uint16_t* row_addr) {
#if defined(__CUDA_ARCH__)
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(row_addr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#elif !defined(__CUDACC__)
  __shared__ const uint16_t* rows_s[32][32];
  const uint3 t = threadIdx;
  const dim3 bd = blockDim;
  const int linear = static_cast<int>(t.x + t.y * bd.x + t.z * bd.x * bd.y);
  const int warp = linear / 32, lane = linear % 32;
  rows_s[warp][lane] = row_addr;
  __syncwarp();
  for (int i = 0; i < 4; ++i) {
    const uint16_t lo = rows_s[warp][8 * i + LdmTransRow(lane, 0)][LdmTransCol(lane, 0)];
    const uint16_t hi = rows_s[warp][8 * i + LdmTransRow(lane, 1)][LdmTransCol(lane, 1)];
    r[i] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
  __syncwarp();  // the address slots are reused by the next call
#endif
}

// 16-byte global -> shared copy, asynchronous on sm_80+ (cp.async.cg: bypasses L1),
// a plain copy on the harness. Both pointers 16-byte aligned. Visible to the block
// after CpAsyncWait<n>() (this thread's groups) and a __syncthreads().
__device__ __forceinline__ void CpAsync16(void* smem_dst, const void* gmem_src) {
#if defined(__CUDA_ARCH__)
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(a), "l"(gmem_src));
#elif !defined(__CUDACC__)
  __builtin_memcpy(smem_dst, gmem_src, 16);
#endif
}
// Closes the group of this thread's cp.async issued since the last commit.
__device__ __forceinline__ void CpAsyncCommit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// Waits until at most `kPending` of this thread's committed groups are in flight.
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}

}  // namespace strata::cuda
