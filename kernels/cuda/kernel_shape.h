// The launch shape of a kernel, computed by one function per op that both the nvcc
// launcher and the host harness call, so the two never disagree.
#pragma once

#include <cstddef>

#include "kernels/cuda/harness/cuda_compat.h"

namespace strata::cuda {

struct KernelShape {
  dim3 grid;
  dim3 block;
  size_t dynamic_shared_bytes = 0;
};

}  // namespace strata::cuda
