// Prefill attention on a real GPU (tensor-core mma.sync path) against the CPU reference
// LaunchPagedAttention. Skips without a CUDA device. Tolerance as in
// prefill_host_parity_test.cc (2e-2 relative + 3e-2 absolute: bf16 Q/K/P/V inputs to
// the MMA, f32 accumulation; the hardware's summation order and exp2f differ from the
// harness only far below that).
#include <cuda_runtime_api.h>

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cuda/prefill/launchers.h"
#include "tests/kernels/cuda/prefill/prefill_test_case.h"

namespace strata::cuda {
namespace {

using prefill_test::Batch;
using prefill_test::Case;

template <typename T>
struct DeviceBuffer {
  explicit DeviceBuffer(const std::vector<T>& host) : n(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T) + 16), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  std::vector<T> Read() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  T* ptr = nullptr;
  size_t n;
};

void RunOnDevice(const Case& c) {
  Batch b;
  ASSERT_NO_FATAL_FAILURE(prefill_test::MakeBatch(c, &b));
  DeviceBuffer<uint8_t> dk(b.k_pool), dv(b.v_pool);
  DeviceBuffer<float> dks(b.k_scale), dvs(b.v_scale), dq(b.q),
      dout(std::vector<float>(b.want.size(), std::numeric_limits<float>::quiet_NaN()));
  DeviceBuffer<int32_t> dtab(b.tables), dqs(b.plan.q_start), dpos0(b.plan.q_pos0), dts(b.plan.tile_start);
  DeviceBuffer<int> dbad(std::vector<int>(1, 0));
  PrefillAttentionParams p = prefill_test::HostParams(&b, dout.ptr);
  p.kv.k = dk.ptr;
  p.kv.v = dv.ptr;
  p.kv.k_scale = b.kv.k_scale ? dks.ptr : nullptr;
  p.kv.v_scale = b.kv.v_scale ? dvs.ptr : nullptr;
  p.kv.block_tables = dtab.ptr;
  p.q = dq.ptr;
  p.q_start = dqs.ptr;
  p.q_pos0 = dpos0.ptr;
  p.tile_start = dts.ptr;
  p.bad_blocks = dbad.ptr;
  ASSERT_EQ(LaunchPrefillAttention(p, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(dbad.Read()[0], 0);
  prefill_test::ExpectClose(dout.Read(), b.want, 2e-2f, 3e-2f);
}

TEST(CudaPrefillDevice, MatchesCpuEveryDtype) {
  SKIP_WITHOUT_GPU();
  for (KvDtype dt : {KvDtype::kBF16, KvDtype::kF16, KvDtype::kF32, KvDtype::kFp8E4M3,
                     KvDtype::kFp8E4M3Unscaled, KvDtype::kInt8}) {
    for (int32_t head_dim : {64, 128}) {
      for (int32_t group : {1, 4}) {
        SCOPED_TRACE(::testing::Message() << KvDtypeName(dt) << " d" << head_dim << " g" << group);
        Case c;
        c.dtype = dt;
        c.head_dim = head_dim;
        c.group = group;
        c.seqs = {{5, 1}, {9, 0}, {0, 37}, {33, 70}, {200, 300}};
        c.seed = 7 + head_dim + group;
        RunOnDevice(c);
      }
    }
  }
}

TEST(CudaPrefillDevice, LongPromptManyTiles) {
  SKIP_WITHOUT_GPU();
  Case c;
  c.dtype = KvDtype::kBF16;
  c.head_dim = 128;
  c.group = 4;
  c.n_kv_heads = 2;
  c.seqs = {{0, 1000}, {64, 3}, {1, 511}};
  RunOnDevice(c);
}

TEST(CudaPrefillDevice, BadParamsAreInvalidValue) {
  // Validation happens before any CUDA call, so this runs without a GPU too.
  PrefillAttentionParams p;
  EXPECT_EQ(LaunchPrefillAttention(p, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace strata::cuda
