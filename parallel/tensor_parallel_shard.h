// Which part of a Llama-family model one tensor-parallel rank holds.
//
//   attention  heads split by KV group: rank r owns KV heads [kv_begin, kv_end)
//              and the query heads that read them, [q_begin, q_end).
//              Q/K/V rows are column-parallel slices; the output projection's
//              columns [q_begin*head_dim, q_end*head_dim) are a row-parallel
//              slice followed by an all-reduce.
//              When TP > KV heads, each KV head is replicated on TP/KV ranks
//              that split its query heads evenly.
//   MLP        gate/up rows [ff_begin, ff_end) column-parallel; down's columns
//              the same range, row-parallel + all-reduce.
//   vocab      embedding and LM head rows [vocab_begin, vocab_end): the
//              embedding all-reduces (rows outside the slice contribute 0);
//              the LM head all-gathers vocab_padded rows per rank.
//
// Splits need not be even (the default SmolLM2-135M has 9 query / 3 KV heads,
// so TP=2 gives ranks 2 and 1 KV groups); each row-parallel slice must start
// and end on the weight's quantization block (`*_align` elements).
//
//   KV heads  (n_kv=3, tp=2)   [ kv0 kv1 | kv2 ]
//   Q heads   (g=3)            [ q0..q5  | q6..q8 ]
//   d_ff      (1536, align 32) [ 0..767  | 768..1535 ]
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace strata::parallel {

struct TensorParallelShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t d_ff = 0;
  int64_t vocab_size = 0;
  // Quantization block (elements) of the attention output and down
  // projections' rows: their column slices must be multiples of it.
  int64_t attn_out_align = 1;
  int64_t ffn_down_align = 1;
};

struct TensorParallelShard {
  int rank = 0;
  int size = 1;
  int64_t q_begin = 0, q_end = 0;        // query heads
  int64_t kv_begin = 0, kv_end = 0;      // KV heads
  int64_t ff_begin = 0, ff_end = 0;      // MLP hidden units
  int64_t vocab_begin = 0, vocab_end = 0;
  int64_t vocab_padded = 0;              // rows per rank in the LM-head gather (max slice)

  int64_t n_heads() const { return q_end - q_begin; }
  int64_t n_kv_heads() const { return kv_end - kv_begin; }
  int64_t d_ff() const { return ff_end - ff_begin; }
  int64_t vocab() const { return vocab_end - vocab_begin; }
  std::string ToString() const;
};

// INVALID_ARGUMENT naming the sizes when `size` ranks cannot split `shape`
// (fewer KV heads than ranks without an even replication, a slice that is not
// block aligned, a rank with nothing to do).
absl::StatusOr<TensorParallelShard> PlanTensorParallelShard(const TensorParallelShape& shape, int rank,
                                                            int size);

}  // namespace strata::parallel
