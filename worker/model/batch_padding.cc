#include "worker/model/batch_padding.h"

#include <algorithm>
#include <cstddef>

namespace strata {

ForwardBatch PadBatch(const ForwardBatch& b, const BatchPadding& pad) {
  ForwardBatch p;
  const int64_t real = static_cast<int64_t>(b.tokens.size());
  const int64_t extra = std::max<int64_t>(0, pad.tokens - real);
  const int32_t width = std::max(b.max_blocks_per_seq, pad.blocks_per_seq);
  p.tokens = b.tokens;
  p.positions = b.positions;
  p.token_seq = b.token_seq;
  p.logit_rows = b.logit_rows;
  p.n_seqs = b.n_seqs + static_cast<int32_t>(extra);
  p.max_blocks_per_seq = width;
  p.block_tables.assign(static_cast<size_t>(p.n_seqs) * width, 0);
  for (int32_t s = 0; s < b.n_seqs; ++s) {
    std::copy_n(b.block_tables.begin() + static_cast<size_t>(s) * b.max_blocks_per_seq,
                b.max_blocks_per_seq, p.block_tables.begin() + static_cast<size_t>(s) * width);
  }
  for (int64_t i = 0; i < extra; ++i) {
    p.tokens.push_back(0);
    p.positions.push_back(0);
    p.token_seq.push_back(b.n_seqs + static_cast<int32_t>(i));
    p.logit_rows.push_back(static_cast<int32_t>(real + i));
  }
  return p;
}

}  // namespace strata
