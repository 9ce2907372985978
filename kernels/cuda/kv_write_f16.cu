#include "kernels/cuda/launchers.h"
#include "kernels/cuda/kv_write_f16_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchKvWriteF16(const KvWriteF16Params& p, cudaStream_t stream) {
  if (CheckKvWriteF16(p) != nullptr) return cudaErrorInvalidValue;
  if (p.tokens == 0) return cudaSuccess;
  const KernelShape s = KvWriteF16Shape(p);
  KvWriteF16Kernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
