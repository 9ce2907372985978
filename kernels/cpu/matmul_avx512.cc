// AVX-512 (F/BW/VL/DQ/VNNI) row kernels: pending; AVX2 kernels serve until then.
#include "kernels/cpu/matmul_kernels.h"

namespace strata {

MatMulKernel Avx512Kernel(TensorType type) { return nullptr; }

}  // namespace strata
