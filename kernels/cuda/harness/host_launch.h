// HostLaunch: run a CUDA kernel body over its grid on the host, for logic tests of
// kernels without a GPU. See cuda_host_compat.h for what this can and cannot check.
//
//   HostLaunch(grid, block, dynamic_shared_bytes, [&] { MyKernel(params); });
//
// Contract:
//   - Blocks run sequentially on the calling thread in linear order
//     (x fastest, then y, then z); the result is deterministic.
//   - Each block runs block.x*block.y*block.z Boost.Context fibers (64 KiB stack each, with a guard
//     page: overflowing it crashes with SIGSEGV rather than corrupting memory), thread
//     (x, y, z) has linear id x + y*bx + z*bx*by and lane id (linear id % 32), warp
//     (linear id / 32), as in CUDA.
//   - Fibers are scheduled cooperatively in linear-id order; one runs until it blocks
//     at a barrier or returns.
//   - A bad launch shape returns InvalidArgument; a divergent barrier returns Internal
//     naming the block. The body must not throw.
//   - Not reentrant: a kernel body must not call HostLaunch. Several OS threads may
//     each run their own HostLaunch at the same time (all state is thread_local).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"

// dim3/uint3 exactly as CUDA spells them (host build only; nvcc has its own).
#ifndef __CUDACC__
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit as in CUDA
};
#endif

namespace strata::cuda_host {

inline constexpr int kMaxThreadsPerBlock = 1024;
inline constexpr size_t kMaxDynamicSharedBytes = 227 * 1024;  // sm_90 opt-in maximum
inline constexpr size_t kFiberStackBytes = 64 * 1024;

absl::Status HostLaunch(dim3 grid, dim3 block, size_t dynamic_shared_bytes,
                        const std::function<void()>& kernel_body);

// Used by the macros of cuda_host_compat.h; valid only inside a running body.
uint3 ThreadIdx();
uint3 BlockIdx();
dim3 BlockDim();
dim3 GridDim();
void* DynamicShared();
int LaneId();
int WarpLanes();       // existing lanes in the caller's warp (< 32 for a partial warp)
uint64_t* WarpSlots();  // 32 exchange slots of the caller's warp
void BlockBarrier();
void WarpBarrier();

}  // namespace strata::cuda_host
