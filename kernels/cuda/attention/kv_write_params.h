// Parameters of the KV-cache write for every KvDtype: the batch's new K/V rows (f32)
// stored into their slots of the paged layout of kernels/paged_kv_view.h exactly as
// strata::LaunchKvWrite (kernels/cpu/paged_attention.h, kernels/cpu/kv_quant.h) does:
// the same codes and the same row scales, bit for bit.
//
// The tables live in device memory, so each token is checked in the kernel: a token
// whose sequence index is outside [0, n_seqs), whose position is outside the block
// table, or whose block id is outside [1, num_blocks) writes nothing and adds 1 to
// *bad_tokens (when not null). Callers treat *bad_tokens != 0 as an internal error.
#pragma once

#include <cstdint>
#include <initializer_list>  // paged_kv_view.h iterates a braced list

#include "kernels/paged_kv_view.h"

namespace strata::cuda {

struct KvWriteParams {
  PagedKvView kv;              // any dtype; k_scale / v_scale set for kFp8E4M3 / kInt8
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
