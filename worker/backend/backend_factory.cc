#include "worker/backend/backend_factory.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/backend/cpu_backend.h"

#ifdef STRATA_WITH_CUDA_BACKEND
#include "worker/backend/cuda/cuda_backend.h"
#include "worker/backend/cuda/device_kernel_ops.h"
#endif

namespace strata {

bool BuiltWithCuda() {
#ifdef STRATA_WITH_CUDA_BACKEND
  return true;
#else
  return false;
#endif
}

absl::Status CheckDevice(const DeviceSpec& device) {
  if (device.kind == DeviceKind::kCpu) return absl::OkStatus();
#ifdef STRATA_WITH_CUDA_BACKEND
  return DeviceKernelOps::CheckDevice(device.index).status();
#else
  return absl::FailedPreconditionError(absl::StrCat(
      device.ToString(), ": this build has no CUDA backend (nvcc was not found when it was built)"));
#endif
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const DeviceSpec& device, ThreadPool* pool,
                                                       const BackendOptions& options) {
  switch (device.kind) {
    case DeviceKind::kCpu:
      if (options.fp8_weights) {
        return absl::InvalidArgumentError(
            "fp8_weights: FP8 weights run on a CUDA device (sm_89+); the CPU backend keeps the "
            "file's weight types");
      }
      return std::make_unique<CpuBackend>(pool);
    case DeviceKind::kCuda:
#ifdef STRATA_WITH_CUDA_BACKEND
    {
      ASSIGN_OR_RETURN(std::unique_ptr<DeviceKernelOps> ops, DeviceKernelOps::Create(device.index));
      CudaBackendOptions cuda_options;
      cuda_options.fp8_weights = options.fp8_weights;
      cuda_options.cuda_graphs = options.cuda_graphs;
      ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> cuda,
                       CudaBackend::Create(std::move(ops), cuda_options));
      return std::unique_ptr<Backend>(std::move(cuda));
    }
#else
      return absl::FailedPreconditionError(absl::StrCat(
          device.ToString(), ": this build has no CUDA backend (nvcc was not found when it was built)"));
#endif
  }
  return absl::InvalidArgumentError("unknown device kind");
}

}  // namespace strata
