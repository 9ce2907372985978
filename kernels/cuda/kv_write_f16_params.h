// Parameters of the F16 KV-cache write: the batch's new K/V rows (f32) stored as
// IEEE half (round to nearest even) into their slots of the paged layout of
// kernels/paged_kv_view.h, like strata::LaunchKvWrite for KvDtype::kF16.
//
// The CPU op validates every (sequence, position, block id) before writing. Here the
// tables live in device memory, so each token is checked in the kernel: a token with
// a sequence index outside [0, n_seqs), a position outside the block table, or a
// block id outside [1, num_blocks) writes nothing and adds 1 to *bad_tokens (when
// not null). Callers treat *bad_tokens != 0 as an internal error.
#pragma once

#include <cstdint>

#include "kernels/paged_kv_view.h"

namespace strata::cuda {

struct KvWriteF16Params {
  PagedKvView kv;              // dtype must be kF16
  const float* k = nullptr;    // [tokens, k_stride] (n_kv_heads * head_dim used)
  const float* v = nullptr;
  int64_t k_stride = 0;        // floats between tokens
  int64_t v_stride = 0;
  int64_t tokens = 0;
  const int32_t* token_seq = nullptr;  // [tokens] sequence index into block_tables
  const int32_t* positions = nullptr;  // [tokens]
  int* bad_tokens = nullptr;           // optional counter of rejected tokens
};

}  // namespace strata::cuda
