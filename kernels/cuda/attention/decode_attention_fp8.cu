#include "kernels/cuda/attention/decode_attention_launch.cuh"

namespace strata::cuda {

STRATA_DECODE_ATTENTION_MAIN(KvDtype::kFp8E4M3);

}  // namespace strata::cuda
