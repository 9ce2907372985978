// The one header a kernel body (.cuh) includes to compile under both compilers.
//
//   nvcc (__CUDACC__): the real CUDA builtins; STRATA_DYNAMIC_SHARED declares the
//                      block's dynamic shared memory as `T* name`.
//   g++  (host):       cuda_host_compat.h, which maps the builtins onto the fiber
//                      harness of host_launch.h (see its header for what that checks).
#pragma once

#ifdef __CUDACC__
#include <cuda_runtime.h>
// One extern byte array for every user (different element types of the same extern
// __shared__ name do not link), cast to T. 16-byte aligned like the host buffer.
#define STRATA_DYNAMIC_SHARED(T, name)                               \
  extern __shared__ __align__(16) unsigned char strata_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(strata_dyn_smem_)
#else
#include "kernels/cuda/harness/cuda_host_compat.h"
#endif
