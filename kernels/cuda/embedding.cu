#include "kernels/cuda/launchers.h"
#include "kernels/cuda/embedding_kernel.cuh"

namespace strata::cuda {

cudaError_t LaunchEmbedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (CheckEmbedding(p) != nullptr) return cudaErrorInvalidValue;
  if (p.tokens == 0) return cudaSuccess;
  const KernelShape s = EmbeddingShape(p);
  EmbeddingKernel<<<s.grid, s.block, s.dynamic_shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace strata::cuda
