// The host execution harness: barriers, shuffles, shared memory, atomics, shapes.
// The kernels are written exactly as CUDA code, through cuda_compat.h.
#include <cmath>
#include <numeric>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/harness/cuda_compat.h"

namespace strata::cuda_host {
namespace {

// Block sum through shared memory with a tree of __syncthreads().
__global__ void TreeSumKernel(const float* in, float* out) {
  __shared__ float buf[256];
  const unsigned t = threadIdx.x;
  buf[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) buf[t] += buf[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = buf[0];
}

TEST(HostLaunch, SharedMemoryTreeReductionPerBlock) {
  const int blocks = 5, threads = 256;
  std::vector<float> in(blocks * threads);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 97) + 0.5f;
  std::vector<float> out(blocks, NAN);
  ASSERT_TRUE(HostLaunch(dim3(blocks), dim3(threads), 0,
                         [&] { TreeSumKernel(in.data(), out.data()); }).ok());
  for (int b = 0; b < blocks; ++b) {
    const float want = std::accumulate(in.begin() + b * threads, in.begin() + (b + 1) * threads, 0.0f);
    EXPECT_FLOAT_EQ(out[b], want) << b;
  }
}

// Butterfly sum: every lane ends with the warp total; shfl_down: lane 0 has it.
__global__ void WarpSumsKernel(const int* in, int* xor_out, int* down_out, int* bcast_out) {
  const unsigned t = threadIdx.x;
  int v = in[t];
  int x = v;
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  xor_out[t] = x;
  int d = v;
  for (unsigned o = 16; o > 0; o >>= 1) d += __shfl_down_sync(0xffffffffu, d, o);
  down_out[t] = d;
  bcast_out[t] = __shfl_sync(0xffffffffu, v, 5);  // lane 5 of each warp
}

TEST(HostLaunch, WarpShuffles) {
  const int threads = 96;
  std::vector<int> in(threads), xs(threads, -1), ds(threads, -1), bs(threads, -1);
  for (int i = 0; i < threads; ++i) in[i] = i * 7 + 3;
  ASSERT_TRUE(HostLaunch(dim3(1), dim3(threads), 0, [&] {
    WarpSumsKernel(in.data(), xs.data(), ds.data(), bs.data());
  }).ok());
  for (int w = 0; w < threads / 32; ++w) {
    int sum = 0;
    for (int l = 0; l < 32; ++l) sum += in[w * 32 + l];
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(xs[w * 32 + l], sum) << w << " " << l;
      EXPECT_EQ(bs[w * 32 + l], in[w * 32 + 5]);
    }
    EXPECT_EQ(ds[w * 32], sum);
  }
}

__global__ void AtomicsKernel(float* fsum, int* isum, int* imax) {
  const int g = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(fsum, 1.0f);
  atomicAdd(isum, g);
  atomicMax(imax, (g * 37) % 1001);
}

TEST(HostLaunch, AtomicsAcrossBlocks) {
  float fsum = 0;
  int isum = 0, imax = -1;
  const int blocks = 7, threads = 64;
  ASSERT_TRUE(HostLaunch(dim3(blocks), dim3(threads), 0,
                         [&] { AtomicsKernel(&fsum, &isum, &imax); }).ok());
  const int n = blocks * threads;
  int want_max = -1;
  for (int g = 0; g < n; ++g) want_max = std::max(want_max, (g * 37) % 1001);
  EXPECT_EQ(fsum, static_cast<float>(n));
  EXPECT_EQ(isum, n * (n - 1) / 2);
  EXPECT_EQ(imax, want_max);
}

// Dynamic shared memory: reverse a block's slice through it.
__global__ void ReverseKernel(const double* in, double* out) {
  STRATA_DYNAMIC_SHARED(double, tmp);
  const unsigned t = threadIdx.x, n = blockDim.x;
  tmp[t] = in[blockIdx.x * n + t];
  __syncthreads();
  out[blockIdx.x * n + t] = tmp[n - 1 - t];
}

TEST(HostLaunch, DynamicSharedMemory) {
  const int blocks = 3, threads = 200;
  std::vector<double> in(blocks * threads), out(blocks * threads, NAN);
  std::iota(in.begin(), in.end(), 1.0);
  ASSERT_TRUE(HostLaunch(dim3(blocks), dim3(threads), threads * sizeof(double),
                         [&] { ReverseKernel(in.data(), out.data()); }).ok());
  for (int b = 0; b < blocks; ++b) {
    for (int t = 0; t < threads; ++t) EXPECT_EQ(out[b * threads + t], in[b * threads + threads - 1 - t]);
  }
}

// Every (block, thread) coordinate of a 3-D grid of 3-D blocks writes its own cell.
__global__ void CoordsKernel(int* cells) {
  const unsigned bx = blockIdx.x, by = blockIdx.y, bz = blockIdx.z;
  const unsigned block = bx + gridDim.x * (by + gridDim.y * bz);
  const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  cells[block * per_block + tid] += static_cast<int>(block * 1000 + tid) + 1;
}

TEST(HostLaunch, MultiDimensionalGridAndBlock) {
  const dim3 grid(3, 2, 2), block(5, 4, 3);
  const int per_block = 5 * 4 * 3, nblocks = 12;
  std::vector<int> cells(per_block * nblocks, 0);
  ASSERT_TRUE(HostLaunch(grid, block, 0, [&] { CoordsKernel(cells.data()); }).ok());
  for (int b = 0; b < nblocks; ++b) {
    for (int t = 0; t < per_block; ++t) ASSERT_EQ(cells[b * per_block + t], b * 1000 + t + 1);
  }
}

TEST(HostLaunch, BadLaunchesReturnErrors) {
  auto noop = [] {};
  EXPECT_EQ(HostLaunch(dim3(0), dim3(32), 0, noop).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostLaunch(dim3(1), dim3(32, 0), 0, noop).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostLaunch(dim3(1), dim3(1025), 0, noop).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostLaunch(dim3(1), dim3(32, 32, 2), 0, noop).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostLaunch(dim3(1, 70000), dim3(32), 0, noop).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostLaunch(dim3(1), dim3(32), kMaxDynamicSharedBytes + 1, noop).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HostLaunch(dim3(1), dim3(1024), kMaxDynamicSharedBytes, noop).ok());
}

__global__ void DivergentBarrierKernel(int* out) {
  if (threadIdx.x < 10) {
    __syncthreads();  // bug: only some threads reach it
  }
  out[threadIdx.x] = 1;
}

__global__ void DivergentShuffleKernel(int* out) {
  int v = 1;
  if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);  // half a warp
  out[threadIdx.x] = v;
}

TEST(HostLaunch, DivergentBarriersAreReportedNotHung) {
  std::vector<int> out(64, 0);
  absl::Status s = HostLaunch(dim3(2), dim3(64), 0, [&] { DivergentBarrierKernel(out.data()); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("__syncthreads"), std::string::npos) << s;
  s = HostLaunch(dim3(1), dim3(64), 0, [&] { DivergentShuffleKernel(out.data()); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("warp"), std::string::npos) << s;
  // The harness is usable again after a failed launch.
  EXPECT_TRUE(HostLaunch(dim3(1), dim3(32), 0, [] {}).ok());
}

// Two OS threads launching at once: each running block has its own __shared__ arrays
// (thread_local) and its own scheduler, so the results do not mix.
TEST(HostLaunch, ConcurrentLaunchesOnTwoThreadsAreIndependent) {
  const int blocks = 40, threads = 256;
  std::vector<float> in_a(blocks * threads, 1.0f), in_b(blocks * threads, 3.0f);
  std::vector<float> out_a(blocks, NAN), out_b(blocks, NAN);
  absl::Status sa, sb;
  std::thread ta([&] {
    sa = HostLaunch(dim3(blocks), dim3(threads), 0, [&] { TreeSumKernel(in_a.data(), out_a.data()); });
  });
  std::thread tb([&] {
    sb = HostLaunch(dim3(blocks), dim3(threads), 0, [&] { TreeSumKernel(in_b.data(), out_b.data()); });
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(sa.ok()) << sa;
  ASSERT_TRUE(sb.ok()) << sb;
  for (int b = 0; b < blocks; ++b) {
    EXPECT_EQ(out_a[b], 256.0f);
    EXPECT_EQ(out_b[b], 768.0f);
  }
}

// A 2-D block whose warps span rows: warps are formed from the linear thread id.
__global__ void WarpIdKernel(int* out) {
  const unsigned lin = threadIdx.x + blockDim.x * threadIdx.y;
  int v = static_cast<int>(lin);
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  out[lin] = v;  // the largest linear id of the caller's warp
}

TEST(HostLaunch, WarpsFollowLinearThreadIdIn2dBlocks) {
  std::vector<int> out(48 * 4, -1);
  ASSERT_TRUE(HostLaunch(dim3(1), dim3(48, 4), 0, [&] { WarpIdKernel(out.data()); }).ok());
  for (int i = 0; i < 48 * 4; ++i) EXPECT_EQ(out[i], (i / 32) * 32 + 31) << i;
}

TEST(HostLaunch, NestedLaunchIsRefused) {
  absl::Status inner;
  ASSERT_TRUE(HostLaunch(dim3(1), dim3(1), 0, [&] { inner = HostLaunch(dim3(1), dim3(1), 0, [] {}); }).ok());
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
}

// kernels/cuda/block_reduce.cuh at every legal block size, called twice in a row (the
// trailing barrier must keep the second call from clobbering the first).
__global__ void BlockReduceTwiceKernel(const float* in, float* out) {
  const float v = in[blockIdx.x * blockDim.x + threadIdx.x];
  const float a = strata::cuda::BlockReduceSum(v);
  const float b = strata::cuda::BlockReduceSum(v * 2.0f);
  out[2 * (blockIdx.x * blockDim.x + threadIdx.x)] = a;
  out[2 * (blockIdx.x * blockDim.x + threadIdx.x) + 1] = b;
}

TEST(HostLaunch, BlockReduceSumAllBlockSizes) {
  for (unsigned threads = 32; threads <= 1024; threads += 32) {
    const unsigned blocks = 2;
    std::vector<float> in(blocks * threads), out(2 * blocks * threads, NAN);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 13) + 1.0f;
    ASSERT_TRUE(HostLaunch(dim3(blocks), dim3(threads), 0,
                           [&] { BlockReduceTwiceKernel(in.data(), out.data()); }).ok());
    for (unsigned b = 0; b < blocks; ++b) {
      float want = 0;
      for (unsigned t = 0; t < threads; ++t) want += in[b * threads + t];
      for (unsigned t = 0; t < threads; ++t) {
        ASSERT_EQ(out[2 * (b * threads + t)], want) << threads << " " << b << " " << t;
        ASSERT_EQ(out[2 * (b * threads + t) + 1], 2 * want) << threads;
      }
    }
  }
}

}  // namespace
}  // namespace strata::cuda_host
