#include "kernels/cuda/launchers.h"
#include "kernels/cuda/gather_rows_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream) {
  if (CheckGatherRows(p) != nullptr) return cudaErrorInvalidValue;
  if (p.n_rows == 0 || p.cols == 0) return cudaSuccess;
  const KernelShape s = GatherRowsShape(p);
  GatherRowsKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
