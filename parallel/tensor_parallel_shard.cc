#include "parallel/tensor_parallel_shard.h"

#include "absl/strings/str_cat.h"

namespace strata::parallel {

namespace {

// [begin, end) of part r when `units` are split over `parts` as evenly as possible.
void SplitEvenly(int64_t units, int r, int parts, int64_t* begin, int64_t* end) {
  *begin = units * r / parts;
  *end = units * (r + 1) / parts;
}

}  // namespace

std::string TensorParallelShard::ToString() const {
  return absl::StrCat("tp rank ", rank, "/", size, ": q heads [", q_begin, ",", q_end, "), kv heads [",
                      kv_begin, ",", kv_end, "), ff [", ff_begin, ",", ff_end, "), vocab [",
                      vocab_begin, ",", vocab_end, ")");
}

absl::StatusOr<TensorParallelShard> PlanTensorParallelShard(const TensorParallelShape& s, int rank,
                                                            int size) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrCat("tensor-parallel rank ", rank, " of ", size,
                                                   " is not a valid rank"));
  }
  if (s.n_kv_heads < 1 || s.n_heads % s.n_kv_heads != 0 || s.head_dim < 1 || s.d_ff < 1 ||
      s.vocab_size < 1 || s.attn_out_align < 1 || s.ffn_down_align < 1) {
    return absl::InvalidArgumentError("tensor-parallel shard: invalid model shape");
  }
  const std::string what = absl::StrCat("tensor parallel size ", size, ": ");
  TensorParallelShard t;
  t.rank = rank;
  t.size = size;
  const int64_t group = s.n_heads / s.n_kv_heads;  // query heads per KV head
  if (size <= s.n_kv_heads) {
    SplitEvenly(s.n_kv_heads, rank, size, &t.kv_begin, &t.kv_end);
    t.q_begin = t.kv_begin * group;
    t.q_end = t.kv_end * group;
  } else {
    // More ranks than KV heads: replicate each KV head on size / n_kv ranks.
    const int64_t per_head = size / s.n_kv_heads;
    if (size % s.n_kv_heads != 0 || group % per_head != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "the model has ", s.n_kv_heads, " KV heads and ", s.n_heads,
          " query heads; with more ranks than KV heads the size must be a multiple of the KV heads "
          "whose query groups split evenly"));
    }
    t.kv_begin = rank / per_head;
    t.kv_end = t.kv_begin + 1;
    const int64_t q_per_rank = group / per_head;
    t.q_begin = t.kv_begin * group + (rank % per_head) * q_per_rank;
    t.q_end = t.q_begin + q_per_rank;
  }
  if ((t.q_begin * s.head_dim) % s.attn_out_align != 0 || (t.q_end * s.head_dim) % s.attn_out_align != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "query heads [", t.q_begin, ", ", t.q_end, ") x head_dim ", s.head_dim,
        " do not split the attention output projection on its ", s.attn_out_align,
        "-element quantization blocks"));
  }
  if (s.d_ff % s.ffn_down_align != 0) {
    return absl::InvalidArgumentError(absl::StrCat("d_ff ", s.d_ff, " is not a multiple of the down projection's ",
                                                   s.ffn_down_align, "-element blocks"));
  }
  const int64_t ff_units = s.d_ff / s.ffn_down_align;
  if (ff_units < size) {
    return absl::InvalidArgumentError(absl::StrCat(what, "d_ff ", s.d_ff, " has only ", ff_units, " blocks of ",
                                                   s.ffn_down_align, " to split"));
  }
  SplitEvenly(ff_units, rank, size, &t.ff_begin, &t.ff_end);
  t.ff_begin *= s.ffn_down_align;
  t.ff_end *= s.ffn_down_align;
  if (s.vocab_size < size) {
    return absl::InvalidArgumentError(absl::StrCat(what, "vocabulary of ", s.vocab_size, " is smaller"));
  }
  SplitEvenly(s.vocab_size, rank, size, &t.vocab_begin, &t.vocab_end);
  t.vocab_padded = (s.vocab_size + size - 1) / size;
  return t;
}

}  // namespace strata::parallel
