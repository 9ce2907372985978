// Padding a batch up to a backend's preferred shape (Backend::PaddingFor),
// so decode steps of nearby sizes replay one CUDA graph (vLLM pads the same
// way for its cudagraph batch sizes).
//
//   real      tokens [ a9 b4 c7 ]  token_seq [0 1 2]  logit_rows [0 1 2]
//   padded 4  tokens [ a9 b4 c7 0 ]  token_seq [0 1 2 3]  logit_rows [0 1 2 3]
//             positions of pad tokens 0; sequence 3's block-table row all 0
//
// A pad token is a sequence of its own at position 0 whose block table holds
// only the null block 0: its K/V land in the null block (never part of a real
// table, so never read by a real token) and its attention reads that one
// slot. Every op is row-wise, so pad rows never touch real rows. Pad logit
// rows come after the real ones; the caller drops them. Extra block-table
// columns are 0 (past a sequence's context, never read).
#pragma once

#include "worker/model/forward_batch.h"

namespace strata {

// `b` padded to `pad` (fields smaller than b's are left as b has them). The
// result has pad.tokens - b.tokens.size() more sequences, tokens and logit rows.
ForwardBatch PadBatch(const ForwardBatch& b, const BatchPadding& pad);

}  // namespace strata
