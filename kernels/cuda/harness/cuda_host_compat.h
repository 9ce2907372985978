// Host (g++) stand-ins for the CUDA builtins a kernel body uses, so the same .cuh
// compiles once with nvcc for the GPU and once with the host compiler for tests.
// Include it through cuda_compat.h; it must never be seen by nvcc.
//
// How a launch runs on the host (host_launch.h):
//   - Blocks run one after another on the calling OS thread, in linear block order.
//   - The threads of a block are fibers (Boost.Context) on that OS thread, scheduled
//     cooperatively: a fiber runs until it reaches __syncthreads(), a warp collective
//     (__syncwarp, __shfl_*_sync) or returns; then the next fiber runs.
//   - __shared__ is `static thread_local`: one instance per OS thread, hence per
//     running block. Like CUDA it is NOT reset between blocks (stale values survive).
//   - Dynamic shared memory is a per-launch 16-byte aligned buffer, refilled with a
//     0xCD poison pattern before every block, so reading it before writing shows up.
//
// What the harness CHECKS:
//   - index arithmetic, coverage of every element (poison your outputs), bounds in
//     multi-dimensional grids/blocks, the arithmetic of reductions and shuffles;
//   - __syncthreads() reached by some threads of a block while others returned or wait
//     at a warp collective (divergent barrier): the launch fails with an error instead
//     of hanging; likewise a warp collective missed by a lane of the warp;
//   - bad launch shapes (zero dims, > 1024 threads, grid.y/z > 65535, dynamic shared
//     memory > kMaxDynamicSharedBytes = 227 KiB, the sm_90 opt-in maximum; sm_80 allows
//     only 163 KiB and any size over 48 KiB needs cudaFuncSetAttribute on the device,
//     which the harness does not model) return InvalidArgument.
// What it CANNOT check:
//   - real concurrency: threads of a warp do not run in lock step and nothing runs in
//     parallel, so data races, missing __syncthreads() between a write and a read by
//     another thread *that happened to run earlier*, memory-model/fence bugs and
//     atomics contention are not exercised (the schedule is one fixed interleaving);
//   - threads waiting at *different* __syncthreads() call sites at the same time
//     (if/else with a barrier in each branch): they are released together;
//   - the `mask` argument of *_sync collectives (all existing lanes of the warp must
//     take part; partial masks are not modelled);
//   - tensor cores, inline PTX, cp.async, TMA, cooperative groups, clusters;
//   - device f16/bf16 intrinsics: there is no host __half here; a kernel picks a host
//     conversion itself (attention/kv_codec.cuh encodes f16 with its own bit arithmetic), so only the
//     device tests compare against the real intrinsics; fast-math intrinsics
//     (__expf, rsqrtf, ...) are the exact libm functions here;
//   - AddressSanitizer builds: fibers switch stacks with Boost.Context, which ASan does
//     not follow without annotations (expect false reports under -fsanitize=address);
//   - timing, occupancy, register pressure, bank conflicts, out-of-bounds accesses to
//     shared memory (no sanitizer); a fiber overflowing its 64 KiB stack
//     hits a guard page (SIGSEGV), it is not reported as a Status.
#pragma once

#ifdef __CUDACC__
#error "cuda_host_compat.h is for the host compiler only; include cuda_compat.h"
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/harness/host_launch.h"

// Internal linkage: a binary may link both a kernel's host-harness build and its
// nvcc build, whose host launch stub has the kernel's own (external) name.
#define __global__ static inline
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __align__(n) alignas(n)

#define threadIdx (::strata::cuda_host::ThreadIdx())
#define blockIdx (::strata::cuda_host::BlockIdx())
#define blockDim (::strata::cuda_host::BlockDim())
#define gridDim (::strata::cuda_host::GridDim())
#define warpSize 32

// Vector types with CUDA's alignment.
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) int4 {
  int x, y, z, w;
};

#define STRATA_DYNAMIC_SHARED(T, name) \
  T* name = reinterpret_cast<T*>(::strata::cuda_host::DynamicShared())

inline void __syncthreads() { ::strata::cuda_host::BlockBarrier(); }
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) { ::strata::cuda_host::WarpBarrier(); }

// Warp shuffles: every lane publishes its value, the warp meets, each lane reads its
// source lane, the warp meets again (so the slots can be reused). A source lane outside
// [0, warp width) or beyond the last existing lane of a partial warp returns the
// caller's own value, as CUDA does for out-of-range shfl_down/up.
namespace strata::cuda_host {
template <typename T>
T WarpExchange(T v, int src_lane, int width) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>,
                "host shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  const int lane = LaneId();
  const int base = (lane / width) * width;
  uint64_t* slots = WarpSlots();
  slots[lane] = bits;
  WarpBarrier();
  uint64_t got = bits;
  const int src = base + src_lane;
  if (src_lane >= 0 && src_lane < width && src < WarpLanes()) got = slots[src];
  WarpBarrier();
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}
}  // namespace strata::cuda_host

template <typename T>
T __shfl_sync(unsigned /*mask*/, T v, int src_lane, int width = 32) {
  return ::strata::cuda_host::WarpExchange(v, src_lane % width, width);
}
template <typename T>
T __shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask, int width = 32) {
  const int lane = ::strata::cuda_host::LaneId() % width;
  return ::strata::cuda_host::WarpExchange(v, lane ^ lane_mask, width);
}
template <typename T>
T __shfl_down_sync(unsigned /*mask*/, T v, unsigned delta, int width = 32) {
  const int lane = ::strata::cuda_host::LaneId() % width;
  return ::strata::cuda_host::WarpExchange(v, lane + static_cast<int>(delta), width);
}
template <typename T>
T __shfl_up_sync(unsigned /*mask*/, T v, unsigned delta, int width = 32) {
  const int lane = ::strata::cuda_host::LaneId() % width;
  return ::strata::cuda_host::WarpExchange(v, lane - static_cast<int>(delta), width);
}

// Atomics: blocks run one at a time today, but use real atomics so a future parallel
// block scheduler stays correct.
template <typename T>
T atomicAdd(T* addr, T v) {
  return std::atomic_ref<T>(*addr).fetch_add(v);
}
template <typename T>
T atomicMax(T* addr, T v) {
  std::atomic_ref<T> a(*addr);
  T old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <typename T>
T atomicMin(T* addr, T v) {
  std::atomic_ref<T> a(*addr);
  T old = a.load();
  while (v < old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

// Fast-math intrinsics: the exact functions on the host.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline void __sincosf(float x, float* s, float* c) { *s = std::sin(x); *c = std::cos(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
using std::fmaxf;
using std::fminf;
// CUDA's integer and float max/min overloads.
using std::max;
using std::min;
