// One model step's input: the new tokens of every scheduled sequence,
// concatenated, each with its position and sequence index. A sequence may
// contribute a whole prompt, a prefill chunk or one decode token; the model
// does not distinguish phases.
//
//   tokens     [ a0 a1 a2 a3 | b7 | c3 c4 ]      (seq a: prompt, b: decode, c: chunk)
//   positions  [  0  1  2  3 |  7 |  3  4 ]
//   token_seq  [  0  0  0  0 |  1 |  2  2 ]
//   block_tables[seq][i] = KV block id of positions [i*bs, (i+1)*bs)
//   logit_rows = token indices whose logits are returned, in output order
#pragma once

#include <cstdint>
#include <vector>

namespace strata {

struct ForwardBatch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int32_t> token_seq;
  int32_t n_seqs = 0;
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> block_tables;  // [n_seqs * max_blocks_per_seq]
  std::vector<int32_t> logit_rows;
};

// The shape a backend wants a batch padded to before the pass (see
// Backend::PaddingFor and PadBatch in batch_padding.h): at least `tokens`
// tokens and `blocks_per_seq` block-table columns. 0 = as is.
struct BatchPadding {
  int64_t tokens = 0;
  int32_t blocks_per_seq = 0;
};

}  // namespace strata
