// The Backend for a DeviceSpec: CpuBackend for cpu, CudaBackend for cuda:N.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "worker/backend/backend.h"
#include "worker/backend/device_spec.h"

namespace strata {

// `pool` (cpu only; may be null) must outlive the backend. For cuda:N:
// FAILED_PRECONDITION when this build has no CUDA backend or the machine has no
// such device (the message starts with the device, "cuda:1: ...", and gives
// CUDA's reason), never a crash.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const DeviceSpec& device, ThreadPool* pool);

// Whether `device` can be used here, without creating a backend (a worker
// checks this before loading its model): OK for cpu; for cuda:N the same
// FAILED_PRECONDITION CreateBackend would return ("no CUDA device is visible",
// "only 2 CUDA devices are visible", "this build has no CUDA backend").
absl::Status CheckDevice(const DeviceSpec& device);

// Whether this build includes the CUDA backend.
bool BuiltWithCuda();

}  // namespace strata
