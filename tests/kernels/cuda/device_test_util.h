// Helpers the CUDA device tests share: whether a GPU is here, the skip
// message, and a device copy of a host vector.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "gtest/gtest.h"

namespace strata::cuda::testing {

inline bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU()                             \
  if (!::strata::cuda::testing::HaveGpu()) GTEST_SKIP() \
      << "no CUDA device (cudaGetDeviceCount failed or 0)"

// A device copy of `host` (empty vectors too: a 1-element allocation, so the
// pointer is valid); Read() waits for the device and copies it back.
template <typename T>
struct DeviceBuffer {
  explicit DeviceBuffer(const std::vector<T>& host) : n(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), (n ? n : 1) * sizeof(T)), cudaSuccess);
    if (n) EXPECT_EQ(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr); }
  std::vector<T> Read() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (n) EXPECT_EQ(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  T* ptr = nullptr;
  size_t n;
};

}  // namespace strata::cuda::testing
