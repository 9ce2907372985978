#include "kernels/cuda/attention/decode_attention_launch.cuh"

namespace strata::cuda {

STRATA_DECODE_ATTENTION_MAIN(KvDtype::kF32);

}  // namespace strata::cuda
