// How much device memory the KV cache gets when the operator did not fix it
// (--kv-cache-mb / --kv-blocks), from the device's own numbers
// (cudaMemGetInfo), the way vLLM's gpu_memory_utilization works:
//
//   budget   = total x utilization             (this worker's share of the GPU)
//   others   = total - free_before_load        (other processes, CUDA context)
//   ours     = weights + activation_reserve    (this worker, besides the KV)
//   kv bytes = budget - others - ours          (must hold at least min_kv_bytes)
//
//   |<------------------------ total ------------------------->|
//   | others | weights | activations | KV cache  | headroom    |
//   |<-------------- budget = total x utilization -->|
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace strata {

struct DeviceMemoryPlanInput {
  int64_t total_bytes = 0;
  int64_t free_bytes_before_load = 0;  // cudaMemGetInfo before the weights were uploaded
  int64_t weight_bytes = 0;
  int64_t activation_reserve_bytes = 0;  // scratch of the largest step, workspaces, graphs
  double utilization = 0.9;              // (0, 1]
  int64_t min_kv_bytes = 0;              // one max-context sequence (KvPlan)
};

// KV bytes; INVALID_ARGUMENT for a utilization outside (0, 1] or negative
// sizes; RESOURCE_EXHAUSTED, with the whole breakdown in MiB, when the KV
// would get less than min_kv_bytes.
absl::StatusOr<int64_t> PlanDeviceKvBytes(const DeviceMemoryPlanInput& in);

}  // namespace strata
