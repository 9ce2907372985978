// PadBatch: pad tokens are sequences of their own on the null block, real
// rows and tables are kept, and the pad logit rows come last.
#include "worker/model/batch_padding.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

ForwardBatch ThreeDecodeTokens() {
  ForwardBatch b;
  b.tokens = {9, 4, 7};
  b.positions = {20, 3, 41};
  b.token_seq = {0, 1, 2};
  b.n_seqs = 3;
  b.max_blocks_per_seq = 3;
  b.block_tables = {5, 6, 0, 2, 0, 0, 8, 11, 12};
  b.logit_rows = {0, 1, 2};
  return b;
}

TEST(PadBatch, PadsTokensSequencesTablesAndLogitRows) {
  const ForwardBatch p = PadBatch(ThreeDecodeTokens(), BatchPadding{.tokens = 5, .blocks_per_seq = 4});
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{9, 4, 7, 0, 0}));
  EXPECT_EQ(p.positions, (std::vector<int32_t>{20, 3, 41, 0, 0}));
  EXPECT_EQ(p.token_seq, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(p.n_seqs, 5);
  EXPECT_EQ(p.max_blocks_per_seq, 4);
  EXPECT_EQ(p.block_tables, (std::vector<int32_t>{5, 6, 0, 0, 2, 0, 0, 0, 8, 11, 12, 0,  //
                                                  0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p.logit_rows, (std::vector<int32_t>{0, 1, 2, 3, 4}));
}

TEST(PadBatch, SmallerTargetsLeaveTheBatchAsIs) {
  const ForwardBatch b = ThreeDecodeTokens();
  const ForwardBatch p = PadBatch(b, BatchPadding{.tokens = 2, .blocks_per_seq = 1});
  EXPECT_EQ(p.tokens, b.tokens);
  EXPECT_EQ(p.token_seq, b.token_seq);
  EXPECT_EQ(p.n_seqs, b.n_seqs);
  EXPECT_EQ(p.max_blocks_per_seq, b.max_blocks_per_seq);
  EXPECT_EQ(p.block_tables, b.block_tables);
  EXPECT_EQ(p.logit_rows, b.logit_rows);
}

TEST(PadBatch, WidensTheTableWithoutAddingTokens) {
  const ForwardBatch p = PadBatch(ThreeDecodeTokens(), BatchPadding{.tokens = 3, .blocks_per_seq = 4});
  EXPECT_EQ(p.tokens.size(), 3u);
  EXPECT_EQ(p.n_seqs, 3);
  EXPECT_EQ(p.block_tables, (std::vector<int32_t>{5, 6, 0, 0, 2, 0, 0, 0, 8, 11, 12, 0}));
}

}  // namespace
}  // namespace strata
