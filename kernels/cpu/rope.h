// Rotary position embedding, in place, on [tokens, n_heads, head_dim].
//
// For pair i (i < head_dim / 2) the angle is positions[t] * inv_freq[i]:
//   interleaved: rotates (x[2i], x[2i+1])          (GGUF llama layout)
//   neox:        rotates (x[i], x[i + head_dim/2])  (HF layout, GGUF qwen2)
// inv_freq already includes any context scaling (linear, Llama-3).
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace strata {

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

absl::Status LaunchRope(const RopeParams& p);

}  // namespace strata
