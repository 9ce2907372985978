// Host-side pieces of worker/backend: device specs, the device memory plan,
// CpuBackend memory. The CUDA backend's device check is exercised by
// worker_process_test (a worker asked for cuda:0 without a GPU exits 2).
#include <cstring>

#include "gtest/gtest.h"
#include "worker/backend/backend_factory.h"
#include "worker/backend/cpu_backend.h"
#include "worker/backend/device_memory_plan.h"
#include "worker/backend/device_spec.h"

namespace strata {
namespace {

TEST(DeviceSpec, ParsesCpuAndCudaOrdinals) {
  EXPECT_EQ(*ParseDeviceSpec("cpu"), (DeviceSpec{DeviceKind::kCpu, 0}));
  EXPECT_EQ(*ParseDeviceSpec("cuda"), (DeviceSpec{DeviceKind::kCuda, 0}));
  EXPECT_EQ(*ParseDeviceSpec("cuda:7"), (DeviceSpec{DeviceKind::kCuda, 7}));
  EXPECT_EQ(ParseDeviceSpec("cuda:12")->ToString(), "cuda:12");
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:1x", "cuda:1024", "cuda:99999", "CPU"}) {
    absl::StatusOr<DeviceSpec> s = ParseDeviceSpec(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_NE(s.status().message().find("expected cpu"), absl::string_view::npos);
    }
  }
}

TEST(DeviceMemoryPlan, KvGetsTheBudgetLeftAfterOthersWeightsAndActivations) {
  DeviceMemoryPlanInput in;
  in.total_bytes = 80LL << 30;
  in.free_bytes_before_load = 79LL << 30;  // 1 GiB used by others / the context
  in.weight_bytes = 16LL << 30;
  in.activation_reserve_bytes = 2LL << 30;
  in.utilization = 0.9;
  in.min_kv_bytes = 1 << 20;
  // 72 GiB budget - 1 - 16 - 2 = 53 GiB.
  EXPECT_EQ(*PlanDeviceKvBytes(in), 53LL << 30);
}

TEST(DeviceMemoryPlan, TooLittleRoomIsResourceExhaustedWithTheBreakdown) {
  DeviceMemoryPlanInput in;
  in.total_bytes = 24LL << 30;
  in.free_bytes_before_load = 23LL << 30;
  in.weight_bytes = 20LL << 30;
  in.utilization = 0.9;
  in.min_kv_bytes = 1LL << 30;
  absl::StatusOr<int64_t> kv = PlanDeviceKvBytes(in);
  ASSERT_EQ(kv.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(kv.status().message().find("weights 20480 MiB"), absl::string_view::npos) << kv.status();
  in.utilization = 1.5;
  EXPECT_EQ(PlanDeviceKvBytes(in).status().code(), absl::StatusCode::kInvalidArgument);
  in.utilization = 0.9;
  in.free_bytes_before_load = in.total_bytes + 1;
  EXPECT_EQ(PlanDeviceKvBytes(in).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CpuBackend, AllocatesAlignedZeroesAndCopies) {
  CpuBackend backend(nullptr);
  EXPECT_TRUE(backend.host_memory());
  absl::StatusOr<DeviceBuffer> buf = backend.Allocate(1000);
  ASSERT_TRUE(buf.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buf->data()) % 64, 0u);
  std::memset(buf->data(), 0xAB, 1000);
  ASSERT_TRUE(backend.FillZero(buf->data(), 1000).ok());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(buf->as<uint8_t>()[i], 0);
  const float src[3] = {1.5f, -2.0f, 3.25f};
  float back[3] = {};
  ASSERT_TRUE(backend.CopyToDevice(buf->data(), src, sizeof(src)).ok());
  ASSERT_TRUE(backend.CopyToHost(back, buf->data(), sizeof(back)).ok());
  EXPECT_EQ(back[2], 3.25f);
  DeviceBuffer moved = std::move(*buf);
  EXPECT_EQ(buf->data(), nullptr);
  EXPECT_EQ(moved.bytes(), 1000);
  EXPECT_FALSE(backend.Allocate(-1).ok());
  absl::StatusOr<DeviceMemoryInfo> mem = backend.MemoryInfo();
  ASSERT_TRUE(mem.ok());
  EXPECT_GT(mem->total_bytes, 0);
}

TEST(BackendFactory, CpuAlwaysAndCudaOnlyWithADevice) {
  absl::StatusOr<std::unique_ptr<Backend>> cpu = CreateBackend(DeviceSpec{DeviceKind::kCpu, 0}, nullptr);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ((*cpu)->device().ToString(), "cpu");
  const DeviceSpec far{DeviceKind::kCuda, 999};
  absl::Status check = CheckDevice(far);
  ASSERT_EQ(check.code(), absl::StatusCode::kFailedPrecondition) << check;
  EXPECT_EQ(check.message().substr(0, 9), "cuda:999:");
  EXPECT_EQ(CreateBackend(far, nullptr).status().code(), absl::StatusCode::kFailedPrecondition);
  BackendOptions fp8;
  fp8.fp8_weights = true;
  EXPECT_EQ(CreateBackend(far, nullptr, fp8).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(BackendFactory, Fp8WeightsOnTheCpuAreAnInvalidArgument) {
  BackendOptions options;
  options.fp8_weights = true;
  absl::StatusOr<std::unique_ptr<Backend>> cpu =
      CreateBackend(DeviceSpec{DeviceKind::kCpu, 0}, nullptr, options);
  ASSERT_EQ(cpu.status().code(), absl::StatusCode::kInvalidArgument) << cpu.status();
  EXPECT_EQ(cpu.status().message().substr(0, 11), "fp8_weights");
  options.fp8_weights = false;
  options.cuda_graphs = false;  // a CUDA-only knob the CPU has nothing to turn off for
  EXPECT_TRUE(CreateBackend(DeviceSpec{DeviceKind::kCpu, 0}, nullptr, options).ok());
}

}  // namespace
}  // namespace strata
