// The Backend for a DeviceSpec: CpuBackend for cpu, CudaBackend for cuda:N.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "worker/backend/backend.h"
#include "worker/backend/device_spec.h"

namespace strata {

// How a backend stores and runs the model, beyond the device itself. Only
// CudaBackend has such choices today; a CPU backend asked for any of them
// is INVALID_ARGUMENT.
struct BackendOptions {
  // Layer matrices as FP8 E4M3 with per-row scales, FP8 cuBLASLt GEMMs
  // (CudaBackendOptions::fp8_weights; sm_89+). Flag: --weight-dtype fp8.
  bool fp8_weights = false;
  // Decode steps recorded and replayed as CUDA graphs (--cuda-graphs on|off).
  bool cuda_graphs = true;
  // Sample on the device when the step allows it (StepExecutor: no
  // penalties, no min_tokens suppression; LlamaModel::CanSampleOnBackend).
  // Off: logits are copied to the host Sampler (tests compare the two).
  bool device_sampling = true;
};

// `pool` (cpu only; may be null) must outlive the backend. For cuda:N:
// FAILED_PRECONDITION when this build has no CUDA backend or the machine has no
// such device (the message starts with the device, "cuda:1: ...", and gives
// CUDA's reason), never a crash.
// `options.fp8_weights` on cpu is INVALID_ARGUMENT starting "fp8_weights".
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const DeviceSpec& device, ThreadPool* pool,
                                                       const BackendOptions& options = {});

// Whether `device` can be used here, without creating a backend (a worker
// checks this before loading its model): OK for cpu; for cuda:N the same
// FAILED_PRECONDITION CreateBackend would return ("no CUDA device is visible",
// "only 2 CUDA devices are visible", "this build has no CUDA backend").
absl::Status CheckDevice(const DeviceSpec& device);

// Whether this build includes the CUDA backend.
bool BuiltWithCuda();

}  // namespace strata
