// Prefill attention on the host harness: the mma.m16n8k16 fragment layout, its
// emulation, the tile plan, and parity of the whole kernel with the CPU reference
// LaunchPagedAttention (kernels/cpu/paged_attention.h).
//
// Tolerance of the attention output: |got - want| <= 2e-2 * |want| + 3e-2 (inputs
// |x| in [0.05, 2], outputs of order 0.1..1). Why: the kernel runs Q K^T and P V on
// bf16 tensor-core inputs with f32 accumulation. Q, the softmax weights P and (for
// every KV dtype but BF16) the decoded K/V are rounded to bf16 (relative error <= 2^-8,
// ~2^-10 rms); a score (128 products, scaled by 1/sqrt(head_dim)) then moves by
// ~2e-3 rms before the exp, which moves an output by ~2e-3 rms of max|V|; the worst of
// ~50K outputs lands at ~5 sigma. Observed worst absolute errors (printed): 3e-3..6e-3
// for BF16/FP8-unscaled KV, ~1.1e-2 where K/V are rounded to bf16 (F16, F32, FP8, INT8).
// The reference decodes the same stored K/V (kv_codec.cuh is bit-exact with it), so
// FP8 and INT8 KV add no quantisation error of their own here.
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/harness/host_launch.h"
#include "kernels/cuda/prefill/host/host_ops.h"
#include "kernels/cuda/prefill/mma_bf16.cuh"
#include "kernels/cuda/prefill/prefill_attention_kernel.cuh"
#include "kernels/cuda/prefill/prefill_plan.h"
#include "tests/kernels/cuda/prefill/prefill_test_case.h"

namespace strata::cuda {
namespace {

using prefill_test::Batch;
using prefill_test::Case;
using prefill_test::SeqSpec;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Every (row, col) of a fragment is held by exactly one (lane, element).
template <typename RowFn, typename ColFn>
void ExpectBijection(int rows, int cols, int elems, RowFn row, ColFn col, const char* what) {
  std::set<std::pair<int, int>> seen;
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < elems; ++i) {
      const int r = row(lane, i), c = col(lane, i);
      ASSERT_TRUE(r >= 0 && r < rows && c >= 0 && c < cols) << what << " lane " << lane << " i " << i;
      EXPECT_TRUE(seen.insert({r, c}).second) << what << " (" << r << "," << c << ") twice";
    }
  }
  EXPECT_EQ(static_cast<int>(seen.size()), rows * cols) << what;
}

TEST(PrefillMmaLayout, EveryElementOwnedOnce) {
  ExpectBijection(16, 16, 8, MmaARow, MmaACol, "A");
  ExpectBijection(16, 8, 4, MmaBRow, MmaBCol, "B");
  ExpectBijection(16, 8, 4, MmaCRow, MmaCCol, "C");
}

TEST(PrefillMmaLayout, MatchesPtxIsaTables) {
  // PTX ISA, mma.m16n8k16 .bf16: groupID = laneid >> 2, threadID_in_group = laneid % 4.
  //   A: row = groupID for a0,a1,a4,a5 and groupID + 8 for a2,a3,a6,a7;
  //      col = tig*2 + (i & 1) for a0..a3 and tig*2 + (i & 1) + 8 for a4..a7.
  //   B: row = tig*2 + (i & 1) for b0,b1 and + 8 for b2,b3; col = groupID.
  //   C: row = groupID for c0,c1 and groupID + 8 for c2,c3; col = tig*2 + (i & 1).
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane % 4;
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(MmaARow(lane, i), (i == 2 || i == 3 || i >= 6) ? g + 8 : g);
      EXPECT_EQ(MmaACol(lane, i), t * 2 + (i & 1) + (i >= 4 ? 8 : 0));
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(MmaBRow(lane, i), t * 2 + (i & 1) + (i >= 2 ? 8 : 0));
      EXPECT_EQ(MmaBCol(lane, i), g);
      EXPECT_EQ(MmaCRow(lane, i), i < 2 ? g : g + 8);
      EXPECT_EQ(MmaCCol(lane, i), t * 2 + (i & 1));
    }
  }
  // Spot values from the ISA figures: lane 5 holds A(1,2) A(1,3) A(9,2) A(9,3)
  // A(1,10) A(1,11) A(9,10) A(9,11), B(2..3,1) B(10..11,1), C(1,2) C(1,3) C(9,2) C(9,3).
  EXPECT_EQ(MmaARow(5, 6), 9);
  EXPECT_EQ(MmaACol(5, 6), 10);
  EXPECT_EQ(MmaBRow(5, 3), 11);
  EXPECT_EQ(MmaCRow(5, 3), 9);
  EXPECT_EQ(MmaCCol(5, 3), 3);
}

TEST(PrefillMmaLayout, AccumulatorsOfTwoBlocksAreOneAFragment) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) EXPECT_EQ(MmaCRowHalf(i), MmaCRow(lane, i) / 8);
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(MmaARowHalf(i), MmaARow(lane, i) / 8);
      const int j = MmaAFromCElem(i), blk = MmaAFromCBlock(i);
      EXPECT_EQ(MmaARow(lane, i), MmaCRow(lane, j)) << lane << " " << i;
      EXPECT_EQ(MmaACol(lane, i), MmaCCol(lane, j) + 8 * blk) << lane << " " << i;
    }
  }
}

// One warp: fragments loaded through the index functions, Mma16816 twice (accumulate),
// D compared with a plain f32 product of the bf16-rounded matrices.
TEST(PrefillMmaLayout, EmulatedMmaComputesTheProduct) {
  const auto a = prefill_test::RandomNonZero(16 * 16, 11), b = prefill_test::RandomNonZero(16 * 8, 12);
  std::vector<float> d(16 * 8, kNaN);
  auto body = [&] {
    const int lane = static_cast<int>(threadIdx.x);
    uint32_t af[4], bf[2];
    for (int r = 0; r < 4; ++r) {
      af[r] = PackBf16x2(a[MmaARow(lane, 2 * r) * 16 + MmaACol(lane, 2 * r)],
                         a[MmaARow(lane, 2 * r + 1) * 16 + MmaACol(lane, 2 * r + 1)]);
    }
    for (int r = 0; r < 2; ++r) {
      bf[r] = PackBf16x2(b[MmaBRow(lane, 2 * r) * 8 + MmaBCol(lane, 2 * r)],
                         b[MmaBRow(lane, 2 * r + 1) * 8 + MmaBCol(lane, 2 * r + 1)]);
    }
    float acc[4] = {1, 1, 1, 1};
    Mma16816(acc, af, bf);
    Mma16816(acc, af, bf);
    for (int i = 0; i < 4; ++i) d[MmaCRow(lane, i) * 8 + MmaCCol(lane, i)] = acc[i];
  };
  ASSERT_TRUE(cuda_host::HostLaunch(dim3(1), dim3(32), 0, body).ok());
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 8; ++c) {
      double want = 0;
      for (int k = 0; k < 16; ++k) {
        want += static_cast<double>(KvBF16ToF32(KvF32ToBF16(a[r * 16 + k]))) *
                KvBF16ToF32(KvF32ToBF16(b[k * 8 + c]));
      }
      EXPECT_NEAR(d[r * 8 + c], 1 + 2 * want, 1e-4) << r << "," << c;
    }
  }
}

// ldmatrix .trans (PTX ISA "ldmatrix": without .trans lane t receives row t / 4,
// columns 2 * (t % 4) + {0, 1}; .trans delivers the transpose) of a row-major
// [k][n] 8x8 matrix gives the B fragment's elements b0, b1 (and of keys 8..15, b2, b3).
TEST(PrefillMmaLayout, LdMatrixTransGivesTheBFragment) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int e = 0; e < 2; ++e) {
      EXPECT_EQ(LdmTransRow(lane, e), MmaBRow(lane, e));
      EXPECT_EQ(LdmTransRow(lane, e) + 8, MmaBRow(lane, 2 + e));
      EXPECT_EQ(LdmTransCol(lane, e), MmaBCol(lane, e));
      EXPECT_EQ(LdmTransRow(lane, e), 2 * (lane % 4) + e);  // transposed: row t / 4 of the
      EXPECT_EQ(LdmTransCol(lane, e), lane / 4);            // loaded matrix is column t / 4
    }
  }
}

// The harness emulation of ldmatrix.x4.trans: 4 matrices in a padded row-major buffer,
// lane 8i+j pointing at row j of matrix i.
TEST(PrefillMmaLayout, EmulatedLdMatrixX4Trans) {
  constexpr int kStride = 24;  // elements per row (16-byte multiple)
  std::vector<uint16_t> mem(32 * kStride);
  for (size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<uint16_t>(i * 7 + 3);
  std::vector<uint32_t> got(32 * 4, 0xFFFFFFFFu);
  auto body = [&] {
    const int lane = static_cast<int>(threadIdx.x);
    uint32_t r[4];
    LdMatrixX4Trans(r, &mem[lane * kStride + 8]);  // matrix i = rows 8i..8i+7, cols 8..15
    for (int i = 0; i < 4; ++i) got[lane * 4 + i] = r[i];
  };
  ASSERT_TRUE(cuda_host::HostLaunch(dim3(1), dim3(32), 0, body).ok());
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const int col = 8 + lane / 4, row0 = 8 * i + 2 * (lane % 4);
      const uint32_t want = mem[row0 * kStride + col] | (static_cast<uint32_t>(mem[(row0 + 1) * kStride + col]) << 16);
      EXPECT_EQ(got[lane * 4 + i], want) << lane << " " << i;
    }
  }
}

TEST(PrefillPlan, RangesAndTilePrefixSum) {
  // seq 0: 4 rows at 5..8, seq 1: none, seq 2: 1 row at 3, seq 3: 40 rows at 0..39.
  std::vector<int32_t> seq = {0, 0, 0, 0, 2}, pos = {5, 6, 7, 8, 3};
  for (int32_t i = 0; i < 40; ++i) {
    seq.push_back(3);
    pos.push_back(i);
  }
  PrefillPlan plan;
  ASSERT_EQ(BuildPrefillPlan(seq.data(), pos.data(), static_cast<int64_t>(seq.size()), 4, 32, 8, &plan), nullptr);
  EXPECT_EQ(plan.group, 4);
  EXPECT_EQ(plan.q_start, (std::vector<int32_t>{0, 4, 4, 5, 45}));
  EXPECT_EQ(plan.q_pos0[0], 5);
  EXPECT_EQ(plan.q_pos0[2], 3);
  EXPECT_EQ(plan.q_pos0[3], 0);
  // Packed rows 16, 0, 4, 160 -> tiles of 128 rows: 1, 0, 1, 2.
  static_assert(kPrefillBlockM == 128);
  EXPECT_EQ(plan.tile_start, (std::vector<int32_t>{0, 1, 1, 2, 4}));
  EXPECT_EQ(plan.n_tiles, 4);
  const int32_t owner[] = {0, 2, 3, 3};
  for (int32_t t = 0; t < plan.n_tiles; ++t) {
    EXPECT_EQ(PrefillTileSequence(plan.tile_start.data(), 4, t), owner[t]) << t;
  }
  // Many empty sequences between non-empty ones: the search skips all of them.
  const std::vector<int32_t> starts = {0, 0, 0, 3, 3, 3, 3, 4, 4};
  for (int32_t t = 0; t < 4; ++t) EXPECT_EQ(PrefillTileSequence(starts.data(), 8, t), t < 3 ? 2 : 6) << t;
}

TEST(PrefillPlan, RejectsBatchesTheKernelCannotRun) {
  PrefillPlan plan;
  const std::vector<int32_t> seq = {0, 1, 0}, pos = {0, 0, 1};
  EXPECT_NE(BuildPrefillPlan(seq.data(), pos.data(), 3, 2, 4, 2, &plan), nullptr);  // not grouped
  const std::vector<int32_t> seq2 = {0, 0}, gap = {3, 5};
  EXPECT_NE(BuildPrefillPlan(seq2.data(), gap.data(), 2, 1, 4, 2, &plan), nullptr);  // not consecutive
  const std::vector<int32_t> out_of_range = {0, 2};
  EXPECT_NE(BuildPrefillPlan(out_of_range.data(), gap.data(), 2, 2, 4, 2, &plan), nullptr);
  EXPECT_NE(BuildPrefillPlan(seq2.data(), gap.data(), 2, 1, 6, 4, &plan), nullptr);  // 6 % 4 != 0
}

struct ParityCase {
  KvDtype dtype;
  int32_t head_dim;
  int32_t group;
  int32_t block_size = 16;
};

class PrefillHostParity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(PrefillHostParity, MatchesCpuPagedAttention) {
  const ParityCase pc = GetParam();
  Case c;
  c.dtype = pc.dtype;
  c.head_dim = pc.head_dim;
  c.group = pc.group;
  c.n_kv_heads = 2;
  c.block_size = pc.block_size;
  // 1 row after a 5-token prefix, an unscheduled sequence, 37 rows from 0, 70 rows
  // after a 33-token prefix (positions 33..102: several key tiles, a partial last tile).
  c.seqs = {{5, 1}, {9, 0}, {0, 37}, {33, 70}};
  c.seed = 100 + pc.head_dim + pc.group + static_cast<int>(pc.dtype);
  Batch b;
  ASSERT_NO_FATAL_FAILURE(prefill_test::MakeBatch(c, &b));
  std::vector<float> out(b.want.size(), kNaN);
  int bad = 0;
  PrefillAttentionParams p = prefill_test::HostParams(&b, out.data());
  p.bad_blocks = &bad;
  const absl::Status st = HostRunPrefillAttention(p);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(bad, 0);
  const float worst = prefill_test::ExpectClose(out, b.want, 2e-2f, 3e-2f);
  std::printf("prefill %s head_dim %d group %d: max abs error %.3g\n", KvDtypeName(pc.dtype), pc.head_dim,
              pc.group, worst);
}

INSTANTIATE_TEST_SUITE_P(
    Kv, PrefillHostParity,
    ::testing::Values(ParityCase{KvDtype::kBF16, 64, 1}, ParityCase{KvDtype::kBF16, 128, 4},
                      ParityCase{KvDtype::kBF16, 64, 4, 7}, ParityCase{KvDtype::kBF16, 128, 2, 1},
                      ParityCase{KvDtype::kF16, 64, 4}, ParityCase{KvDtype::kF16, 128, 1, 5},
                      ParityCase{KvDtype::kF32, 64, 4}, ParityCase{KvDtype::kFp8E4M3, 64, 4},
                      ParityCase{KvDtype::kFp8E4M3Unscaled, 64, 1}, ParityCase{KvDtype::kInt8, 128, 4}),
    [](const ::testing::TestParamInfo<ParityCase>& info) {
      std::string name = KvDtypeName(info.param.dtype);
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name + "_d" + std::to_string(info.param.head_dim) + "_g" + std::to_string(info.param.group) +
             "_bs" + std::to_string(info.param.block_size);
    });

// Without GQA a tile holds 128 tokens: sequences of 129 and 140 rows span two tiles,
// and a 100-token prefix gives key tiles wholly below the tile's first position (the
// unmasked path).
TEST(PrefillHost, MultiTileSequencesWithoutGqa) {
  for (int32_t head_dim : {64, 128}) {
    Case c;
    c.head_dim = head_dim;
    c.group = 1;
    c.n_kv_heads = 1;
    c.seqs = {{100, 140}, {0, 129}};
    c.seed = 9 + head_dim;
    Batch b;
    ASSERT_NO_FATAL_FAILURE(prefill_test::MakeBatch(c, &b));
    ASSERT_EQ(b.plan.n_tiles, 4);
    std::vector<float> out(b.want.size(), kNaN);
    ASSERT_TRUE(HostRunPrefillAttention(prefill_test::HostParams(&b, out.data())).ok());
    prefill_test::ExpectClose(out, b.want, 2e-2f, 3e-2f);
  }
}

TEST(PrefillHost, OutputStrideLeavesTheGapAlone) {
  Case c;
  c.head_dim = 64;
  c.group = 4;
  c.seqs = {{3, 20}};
  Batch b;
  ASSERT_NO_FATAL_FAILURE(prefill_test::MakeBatch(c, &b));
  const int64_t row = static_cast<int64_t>(b.n_heads) * b.head_dim, stride = row + 5;
  std::vector<float> out(b.tokens * stride, kNaN);
  PrefillAttentionParams p = prefill_test::HostParams(&b, out.data());
  p.out_stride = stride;
  ASSERT_TRUE(HostRunPrefillAttention(p).ok());
  std::vector<float> packed;
  for (int64_t t = 0; t < b.tokens; ++t) {
    packed.insert(packed.end(), out.begin() + t * stride, out.begin() + t * stride + row);
    for (int64_t i = row; i < stride; ++i) EXPECT_TRUE(std::isnan(out[t * stride + i]));
  }
  prefill_test::ExpectClose(packed, b.want, 2e-2f, 3e-2f);
}

TEST(PrefillHost, BadBlockIdIsCountedNotRead) {
  Case c;
  c.head_dim = 64;
  c.seqs = {{0, 20}};
  Batch b;
  ASSERT_NO_FATAL_FAILURE(prefill_test::MakeBatch(c, &b));
  b.tables[1] = b.kv.num_blocks;  // positions 16..19 point past the pool
  std::vector<float> out(b.want.size(), kNaN);
  int bad = 0;
  PrefillAttentionParams p = prefill_test::HostParams(&b, out.data());
  p.bad_blocks = &bad;
  ASSERT_TRUE(HostRunPrefillAttention(p).ok());
  EXPECT_GT(bad, 0);
  // A block table too short for the sequence's last position: counted, nothing read.
  bad = 0;
  p.kv.max_blocks_per_seq = 1;
  ASSERT_TRUE(HostRunPrefillAttention(p).ok());
  EXPECT_GT(bad, 0);
}

TEST(PrefillHost, BadParamsAreInvalidArgument) {
  Case c;
  c.seqs = {{0, 3}};
  Batch b;
  ASSERT_NO_FATAL_FAILURE(prefill_test::MakeBatch(c, &b));
  std::vector<float> out(b.want.size(), kNaN);
  PrefillAttentionParams p = prefill_test::HostParams(&b, out.data());
  PrefillAttentionParams bad = p;
  bad.kv.head_dim = 96;
  EXPECT_EQ(HostRunPrefillAttention(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = p;
  bad.plan_group = 2;
  EXPECT_EQ(HostRunPrefillAttention(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = p;
  bad.n_heads = 3;
  EXPECT_EQ(HostRunPrefillAttention(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = p;
  bad.q = nullptr;
  EXPECT_EQ(HostRunPrefillAttention(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = p;
  bad.n_tiles = 0;  // nothing to do
  EXPECT_TRUE(HostRunPrefillAttention(bad).ok());
  EXPECT_TRUE(std::isnan(out[0]));
}

}  // namespace
}  // namespace strata::cuda
