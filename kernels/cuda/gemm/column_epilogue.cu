#include "kernels/cuda/gemm/column_epilogue_kernel.cuh"
#include "kernels/cuda/gemm/launchers.h"

namespace strata::cuda {

cudaError_t LaunchColumnEpilogue(const ColumnEpilogueParams& p, cudaStream_t stream) {
  if (CheckColumnEpilogue(p) != nullptr) return cudaErrorInvalidValue;
  if (p.rows == 0 || p.cols == 0 || (!p.scale && !p.bias)) return cudaSuccess;
  const KernelShape s = ColumnEpilogueShape(p);
  ColumnEpilogueKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
