#include "kernels/cuda/attention/decode_attention_launch.cuh"

namespace strata::cuda {

STRATA_DECODE_ATTENTION_MAIN(KvDtype::kBF16);

}  // namespace strata::cuda
