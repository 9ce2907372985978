#include "kernels/cuda/attention/kv_write_kernel.cuh"
#include "kernels/cuda/attention/launchers.h"

namespace strata::cuda {

cudaError_t LaunchKvWrite(const KvWriteParams& p, cudaStream_t stream) {
  if (CheckKvWrite(p) != nullptr) return cudaErrorInvalidValue;
  if (p.tokens == 0) return cudaSuccess;
  const KernelShape s = KvWriteShape(p);
  KvWriteKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
