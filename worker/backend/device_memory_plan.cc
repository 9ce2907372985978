#include "worker/backend/device_memory_plan.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace strata {

namespace {
double MiB(int64_t b) { return static_cast<double>(b) / (1 << 20); }
}  // namespace

absl::StatusOr<int64_t> PlanDeviceKvBytes(const DeviceMemoryPlanInput& in) {
  if (!(in.utilization > 0.0 && in.utilization <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("gpu memory utilization %g is outside (0, 1]", in.utilization));
  }
  if (in.total_bytes <= 0 || in.free_bytes_before_load < 0 || in.free_bytes_before_load > in.total_bytes ||
      in.weight_bytes < 0 || in.activation_reserve_bytes < 0 || in.min_kv_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "device memory numbers are inconsistent: total %d, free %d, weights %d, reserve %d", in.total_bytes,
        in.free_bytes_before_load, in.weight_bytes, in.activation_reserve_bytes));
  }
  const int64_t budget = static_cast<int64_t>(std::floor(static_cast<double>(in.total_bytes) * in.utilization));
  const int64_t others = in.total_bytes - in.free_bytes_before_load;
  const int64_t kv = budget - others - in.weight_bytes - in.activation_reserve_bytes;
  if (kv < in.min_kv_bytes || kv <= 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "device memory: %.0f MiB x utilization %.2f = %.0f MiB budget; other processes %.0f MiB, weights %.0f MiB, "
        "activations %.0f MiB leave %.0f MiB for the KV cache, which needs at least %.0f MiB (one max-context "
        "sequence): raise --gpu-memory-utilization, lower --max-context, or shard the model (--tp-size, "
        "--pp-size)",
        MiB(in.total_bytes), in.utilization, MiB(budget), MiB(others), MiB(in.weight_bytes),
        MiB(in.activation_reserve_bytes), MiB(kv), MiB(in.min_kv_bytes)));
  }
  return kv;
}

}  // namespace strata
