// Parameters of the RoPE kernel: kernels/cpu/rope.h semantics, in place on
// [tokens, n_heads, head_dim] with a token stride.
//   interleaved (neox = false): rotates (x[2i], x[2i+1])
//   neox:                       rotates (x[i], x[i + head_dim/2])
// angle = positions[t] * inv_freq[i]; inv_freq already includes any context scaling.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct RopeParams {
  float* x = nullptr;
  int64_t tokens = 0;
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t token_stride = 0;  // floats between tokens; 0 means n_heads * head_dim
  const int32_t* positions = nullptr;  // [tokens]
  const float* inv_freq = nullptr;     // [head_dim / 2]
  bool neox = false;
};

}  // namespace strata::cuda
