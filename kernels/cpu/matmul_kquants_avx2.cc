// AVX2 row kernels for the k-quants (Q4_K, Q5_K, Q6_K): pending, the scalar
// kernels serve these types until then.
#include "kernels/cpu/matmul_kernels.h"

namespace strata {

MatMulKernel Avx2KQuantKernel(TensorType type) { return nullptr; }

}  // namespace strata
