// Parameters of the embedding lookup: out[t, :] = table[ids[t], :] (f32 rows).
// Token ids live in device memory, so the kernel cannot return a status per id: an id
// outside [0, vocab) leaves its output row untouched and adds 1 to *bad_ids (when not
// null). Callers validate ids on the host (the coordinator checks them against the
// vocabulary) and treat *bad_ids != 0 as an internal error.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct EmbeddingParams {
  const float* table = nullptr;  // [vocab, dim]
  const int32_t* ids = nullptr;  // [tokens]
  float* out = nullptr;          // [tokens, out_stride] (dim floats used)
  int64_t tokens = 0;
  int64_t vocab = 0;
  int64_t dim = 0;
  int64_t out_stride = 0;  // 0 means dim
  int* bad_ids = nullptr;  // optional counter of out-of-range ids
};

}  // namespace strata::cuda
