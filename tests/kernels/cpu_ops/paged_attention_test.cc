// Paged attention and KV write against a direct double-precision attention
// over contiguous K/V (the CPU reference), with shuffled block ids, GQA,
// sequences at different positions, every KV dtype (F32, F16, BF16, FP8 E4M3,
// INT8)
// and every SIMD level the CPU has.
#include "kernels/cpu/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"

namespace strata {
namespace {

struct Case {
  int n_heads = 6;
  int n_kv_heads = 2;
  int head_dim = 32;
  int block_size = 4;
  std::vector<int> seq_lens = {1, 7, 13};
  KvDtype dtype = KvDtype::kF32;
};

// Per-format bound on |attention with the quantised cache - attention with the
// exact f32 K/V| for N(0, 1) q, k, v, head_dim 24..128, up to 130 positions:
// ~1.7x the worst measured (FP8 0.151, INT8 0.027 at head_dim 128; see
// docs/kernels.md "Quantised KV cache"). 0 = not checked (F32/F16: covered by tol).
// BF16 has no fixed bound here: see BF16ExactTolerance.
double ExactTolerance(KvDtype d) {
  switch (d) {
    case KvDtype::kFp8E4M3: return 0.25;
    // fp8-unscaled: the test values are N(0, 1), i.e. far inside +-8 (so far
    // below the +-448 saturation), where plain E4M3 has the same 3 mantissa
    // bits (relative error <= 2^-4) as the per-row-scaled codes; only values
    // below 2^-6 fall to subnormals with absolute error <= 2^-10, negligible in
    // a dot product of N(0, 1) values. So the fp8 bound applies unchanged.
    case KvDtype::kFp8E4M3Unscaled: return 0.25;
    case KvDtype::kInt8: return 0.05;
    default: return 0;
  }
}

// BF16 keeps 8 significant bits: each stored element is within 2^-8 ~ 3.9e-3
// of its value, relative. An output is a convex combination of V rows, so the
// V rounding moves it by at most 2^-8 * max|v| (exactly that at position 0,
// where the output is the bf16-rounded V row); the K rounding perturbs the
// scores by ~2^-8 of |q . k| / sqrt(head_dim) and moves the output by a similar
// amount. Bound: 2 * 2^-8 = 7.8e-3 relative to the value scale max|v|
// (measured: <= 2^-8 * max|v| on these cases, printed per case).
double BF16ExactTolerance(const std::vector<float>& v) {
  float vmax = 0;
  for (float x : v) vmax = std::max(vmax, std::fabs(x));
  return 2 * std::ldexp(1.0, -8) * vmax;
}

// The levels this CPU runs (AVX-512 CPUs run the AVX2 body).
std::vector<SimdLevel> Levels() {
  std::vector<SimdLevel> l = {SimdLevel::kScalar};
  if (HardwareSimdLevel() >= SimdLevel::kAvx2) l.push_back(SimdLevel::kAvx2);
  return l;
}

struct Pools {
  std::vector<uint8_t> k, v;
  std::vector<float> ks, vs;
  PagedKvView view;
};

void MakePools(const Case& c, int num_blocks, Pools* p) {
  KvPoolBytes bytes;
  ASSERT_TRUE(ComputeKvPoolBytes(c.dtype, num_blocks, c.n_kv_heads, c.block_size, c.head_dim, &bytes));
  p->k.assign(bytes.data, 0);
  p->v.assign(bytes.data, 0);
  p->ks.assign(bytes.scales / 4, 0.0f);
  p->vs.assign(bytes.scales / 4, 0.0f);
  p->view.k = p->k.data();
  p->view.v = p->v.data();
  p->view.k_scale = KvDtypeHasScales(c.dtype) ? p->ks.data() : nullptr;
  p->view.v_scale = KvDtypeHasScales(c.dtype) ? p->vs.data() : nullptr;
  p->view.dtype = c.dtype;
  p->view.num_blocks = num_blocks;
  p->view.block_size = c.block_size;
  p->view.n_kv_heads = c.n_kv_heads;
  p->view.head_dim = c.head_dim;
}

// K or V values as the cache stores them, row by row (token, KV head),
// decoded in double from an independent quantisation of the same inputs.
std::vector<double> StoredValues(KvDtype dtype, const std::vector<float>& x, int rows, int hd) {
  std::vector<double> out(x.size());
  std::vector<uint8_t> q8(hd);
  std::vector<int8_t> qi(hd);
  for (int r = 0; r < rows; ++r) {
    const float* row = x.data() + static_cast<size_t>(r) * hd;
    double* o = out.data() + static_cast<size_t>(r) * hd;
    switch (dtype) {
      case KvDtype::kF32:
        for (int d = 0; d < hd; ++d) o[d] = row[d];
        break;
      case KvDtype::kF16:
        for (int d = 0; d < hd; ++d) o[d] = F16ToF32(F32ToF16(row[d]));
        break;
      case KvDtype::kBF16:  // bit-exact RNE reference, independent of F32ToBF16 (inputs are finite)
        for (int d = 0; d < hd; ++d) {
          uint32_t bits;
          std::memcpy(&bits, &row[d], 4);
          bits = ((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16) << 16;
          float f;
          std::memcpy(&f, &bits, 4);
          o[d] = f;
        }
        break;
      case KvDtype::kFp8E4M3: {
        const double scale = QuantizeRowFp8(row, hd, q8.data());
        for (int d = 0; d < hd; ++d) o[d] = scale * E4M3ToF32(q8[d]);
        break;
      }
      case KvDtype::kInt8: {
        const double scale = QuantizeRowInt8(row, hd, qi.data());
        for (int d = 0; d < hd; ++d) o[d] = scale * qi[d];
        break;
      }
      case KvDtype::kFp8E4M3Unscaled:  // E4M3 of the raw value, implicit scale 1
        for (int d = 0; d < hd; ++d) o[d] = E4M3ToF32(F32ToE4M3(row[d]));
        break;
    }
  }
  return out;
}

// Runs the case at every level; checks each against the reference over the
// stored values (`tol`) and, for quantised dtypes, against the exact K/V
// (ExactTolerance); returns the outputs per level.
std::vector<std::vector<float>> RunCase(const Case& c, float tol) {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n_seqs = static_cast<int>(c.seq_lens.size());
  const int max_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  const int max_blocks = (max_len + c.block_size - 1) / c.block_size;
  const int num_blocks = 1 + n_seqs * max_blocks + 3;
  // Shuffled block ids so tables are not contiguous.
  std::vector<int32_t> ids(num_blocks - 1);
  std::iota(ids.begin(), ids.end(), 1);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(n_seqs * max_blocks);
  for (int i = 0; i < n_seqs * max_blocks; ++i) tables[i] = ids[i];

  const int kv_dim = c.n_kv_heads * c.head_dim;
  const int q_dim = c.n_heads * c.head_dim;
  // All tokens of all sequences in one batch (a prefill of everything).
  std::vector<int32_t> token_seq, positions;
  for (int s = 0; s < n_seqs; ++s) {
    for (int p = 0; p < c.seq_lens[s]; ++p) {
      token_seq.push_back(s);
      positions.push_back(p);
    }
  }
  const int T = static_cast<int>(token_seq.size());
  std::vector<float> q(T * q_dim), k(T * kv_dim), v(T * kv_dim);
  for (auto* vec : {&q, &k, &v}) for (float& x : *vec) x = nd(rng);

  Pools pools;
  MakePools(c, num_blocks, &pools);
  PagedKvView& view = pools.view;
  view.block_tables = tables.data();
  view.max_blocks_per_seq = max_blocks;
  view.n_seqs = n_seqs;

  KvWriteParams wp;
  wp.kv = view;
  wp.k = k.data();
  wp.v = v.data();
  wp.k_stride = kv_dim;
  wp.v_stride = kv_dim;
  wp.tokens = T;
  wp.token_seq = token_seq.data();
  wp.positions = positions.data();
  EXPECT_TRUE(LaunchKvWrite(wp).ok());

  // Reference: contiguous causal attention per sequence in double, reading K/V
  // as stored (rounded to f16, or quantised) and exact.
  const std::vector<double> ks = StoredValues(c.dtype, k, T * c.n_kv_heads, c.head_dim);
  const std::vector<double> vs = StoredValues(c.dtype, v, T * c.n_kv_heads, c.head_dim);
  const std::vector<double> ke(k.begin(), k.end()), ve(v.begin(), v.end());
  auto reference = [&](const std::vector<double>& kk, const std::vector<double>& vv) {
    std::vector<double> ref(static_cast<size_t>(T) * q_dim);
    const int group = c.n_heads / c.n_kv_heads;
    int base = 0;
    for (int s = 0; s < n_seqs; ++s) {
      for (int i = 0; i < c.seq_lens[s]; ++i) {
        const int t = base + i;
        for (int h = 0; h < c.n_heads; ++h) {
          const int kvh = h / group;
          std::vector<double> sc(i + 1);
          double mx = -1e300;
          for (int j = 0; j <= i; ++j) {
            double dot = 0;
            for (int d = 0; d < c.head_dim; ++d) {
              dot += static_cast<double>(q[t * q_dim + h * c.head_dim + d]) *
                     kk[(base + j) * kv_dim + kvh * c.head_dim + d];
            }
            sc[j] = dot / std::sqrt(static_cast<double>(c.head_dim));
            mx = std::max(mx, sc[j]);
          }
          double sum = 0;
          for (double& x : sc) sum += (x = std::exp(x - mx));
          for (int d = 0; d < c.head_dim; ++d) {
            double acc = 0;
            for (int j = 0; j <= i; ++j) acc += sc[j] / sum * vv[(base + j) * kv_dim + kvh * c.head_dim + d];
            ref[t * q_dim + h * c.head_dim + d] = acc;
          }
        }
      }
      base += c.seq_lens[s];
    }
    return ref;
  };
  const std::vector<double> ref = reference(ks, vs);
  const double exact_tol = c.dtype == KvDtype::kBF16 ? BF16ExactTolerance(v) : ExactTolerance(c.dtype);
  const std::vector<double> exact = exact_tol > 0 ? reference(ke, ve) : std::vector<double>();

  auto pool = ThreadPool::Create(2).value();
  std::vector<std::vector<float>> outs;
  for (SimdLevel level : Levels()) {
    SCOPED_TRACE(std::string(SimdLevelName(level)) + " " + KvDtypeName(c.dtype));
    std::vector<float> out(T * q_dim, std::numeric_limits<float>::quiet_NaN());
    PagedAttentionParams ap;
    ap.kv = view;
    ap.q = q.data();
    ap.q_stride = q_dim;
    ap.out = out.data();
    ap.tokens = T;
    ap.n_heads = c.n_heads;
    ap.token_seq = token_seq.data();
    ap.positions = positions.data();
    ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    ap.pool = pool.get();
    EXPECT_TRUE(LaunchPagedAttentionWithLevel(ap, level).ok());
    double max_err = 0, max_exact = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double e = std::fabs(out[i] - ref[i]);
      if (!(e <= tol)) {
        ADD_FAILURE() << "element " << i << " (token " << i / q_dim << ") got " << out[i] << " want " << ref[i];
        break;
      }
      max_err = std::max(max_err, e);
      if (!exact.empty()) max_exact = std::max(max_exact, std::fabs(out[i] - exact[i]));
    }
    if (!exact.empty()) {
      EXPECT_LE(max_exact, exact_tol) << "vs attention over the exact f32 K/V";
      std::printf("  [%s %s hd %d] max |out - ref(stored)| %.2e, max |out - ref(exact)| %.4f (bound %.4f)\n",
                  KvDtypeName(c.dtype), std::string(SimdLevelName(level)).c_str(), c.head_dim, max_err, max_exact,
                  exact_tol);
    }
    outs.push_back(std::move(out));
  }
  return outs;
}

TEST(PagedAttention, MatchesContiguousReferenceF32) { RunCase(Case{}, 1e-5f); }

TEST(PagedAttention, MatchesContiguousReferenceF16Cache) {
  Case c;
  c.dtype = KvDtype::kF16;
  RunCase(c, 1e-5f);  // the reference reads the same f16-rounded values
}

TEST(PagedAttention, MatchesContiguousReferenceBF16Cache) {
  Case c;
  c.dtype = KvDtype::kBF16;
  RunCase(c, 1e-5f);  // the reference reads the same bf16-rounded values
  c.n_heads = 4;
  c.n_kv_heads = 1;
  c.block_size = 5;
  c.seq_lens = {31, 2};
  RunCase(c, 1e-5f);
}

TEST(PagedAttention, MultiQueryAndOddBlockSize) {
  Case c;
  c.n_heads = 4;
  c.n_kv_heads = 1;
  c.block_size = 5;
  c.seq_lens = {31, 2};
  RunCase(c, 1e-5f);
}

// Block size 16: runs of 8 positions inside a block take the 8-row score
// path; head dims 64 and 128 the register-resident V slices.
TEST(PagedAttention, LongSequencesLargeBlocks) {
  for (int hd : {64, 128, 24}) {
    for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kBF16, KvDtype::kFp8E4M3, KvDtype::kInt8,
                          KvDtype::kFp8E4M3Unscaled}) {
      Case c;
      c.n_heads = 9;
      c.n_kv_heads = 3;
      c.head_dim = hd;
      c.block_size = 16;
      c.seq_lens = {1, 9, 40, 130};
      c.dtype = dtype;
      RunCase(c, 2e-5f);
    }
  }
}

TEST(PagedAttention, QuantisedCaches) {
  for (KvDtype dtype : {KvDtype::kFp8E4M3, KvDtype::kInt8, KvDtype::kFp8E4M3Unscaled}) {
    Case c;
    c.dtype = dtype;
    RunCase(c, 1e-5f);  // the reference reads the same quantised values
    c.n_heads = 4;
    c.n_kv_heads = 1;
    c.block_size = 5;
    c.seq_lens = {31, 2};
    RunCase(c, 1e-5f);
  }
}

// Scalar and AVX2 bodies agree closely on every dtype (each is also checked
// against the reference above; this pins them to each other).
TEST(PagedAttention, ScalarSimdParity) {
  if (HardwareSimdLevel() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2";
  for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kBF16, KvDtype::kFp8E4M3, KvDtype::kInt8,
                          KvDtype::kFp8E4M3Unscaled}) {
    Case c;
    c.head_dim = 64;
    c.block_size = 16;
    c.seq_lens = {3, 40, 70};
    c.dtype = dtype;
    const auto outs = RunCase(c, 2e-5f);
    ASSERT_EQ(outs.size(), 2u);
    double worst = 0;
    for (size_t i = 0; i < outs[0].size(); ++i) worst = std::max(worst, std::fabs(double{outs[0][i]} - outs[1][i]));
    EXPECT_LE(worst, 1e-5) << KvDtypeName(dtype);
  }
}

// fp8-unscaled keeps no scale, so a NaN stays in its own element (scaled fp8
// turns the whole row NaN through the scale): both bodies decode the E4M3 NaN
// code to NaN, and values beyond +-448 are read back as +-448.
TEST(PagedAttention, Fp8UnscaledNaNAndSaturation) {
  Case c;
  c.dtype = KvDtype::kFp8E4M3Unscaled;
  c.n_heads = 1;
  c.n_kv_heads = 1;
  c.head_dim = 16;
  c.block_size = 16;
  Pools pools;
  MakePools(c, 2, &pools);
  std::vector<int32_t> table = {1};
  pools.view.block_tables = table.data();
  pools.view.max_blocks_per_seq = 1;
  pools.view.n_seqs = 1;
  std::vector<float> k(16, 0.0f), v(16);
  for (int d = 0; d < 16; ++d) v[d] = static_cast<float>(d) - 8.0f;
  v[3] = std::numeric_limits<float>::quiet_NaN();
  v[5] = 1000.0f;
  v[6] = -500.0f;
  int32_t seq = 0, pos = 0;
  KvWriteParams wp;
  wp.kv = pools.view;
  wp.k = k.data();
  wp.v = v.data();
  wp.k_stride = 16;
  wp.v_stride = 16;
  wp.tokens = 1;
  wp.token_seq = &seq;
  wp.positions = &pos;
  ASSERT_TRUE(LaunchKvWrite(wp).ok());
  std::vector<float> q(16, 1.0f);
  for (SimdLevel level : Levels()) {
    SCOPED_TRACE(SimdLevelName(level));
    std::vector<float> out(16);
    PagedAttentionParams ap;
    ap.kv = pools.view;
    ap.q = q.data();
    ap.q_stride = 16;
    ap.out = out.data();
    ap.tokens = 1;
    ap.n_heads = 1;
    ap.token_seq = &seq;
    ap.positions = &pos;
    ap.scale = 0.25f;
    ASSERT_TRUE(LaunchPagedAttentionWithLevel(ap, level).ok());
    for (int d = 0; d < 16; ++d) {
      if (d == 3) {
        EXPECT_TRUE(std::isnan(out[d]));
      } else if (d == 5) {
        EXPECT_EQ(out[d], 448.0f);
      } else if (d == 6) {
        EXPECT_EQ(out[d], -448.0f);
      } else {
        EXPECT_EQ(out[d], v[d]) << d;  // small integers are exact in E4M3
      }
    }
  }
}

TEST(PagedAttention, HeadDimNotMultipleOfEight) {
  Case c;
  c.head_dim = 20;  // takes the scalar body on every CPU
  c.dtype = KvDtype::kF16;
  RunCase(c, 1e-5f);
  c.dtype = KvDtype::kBF16;
  RunCase(c, 1e-5f);
}

TEST(PagedAttention, RejectsOutOfRangeBlockAndPosition) {
  std::vector<float> pool(2 * 2 * 4 * 8);
  std::vector<int32_t> table = {1, 7};  // block 7 does not exist
  PagedKvView view;
  view.k = pool.data();
  view.v = pool.data();
  view.dtype = KvDtype::kF32;
  view.num_blocks = 2;
  view.block_size = 4;
  view.n_kv_heads = 1;
  view.head_dim = 8;
  view.block_tables = table.data();
  view.max_blocks_per_seq = 2;
  view.n_seqs = 1;
  std::vector<float> q(8), out(8);
  int32_t seq = 0, pos = 5;
  PagedAttentionParams ap;
  ap.kv = view;
  ap.q = q.data();
  ap.q_stride = 8;
  ap.out = out.data();
  ap.tokens = 1;
  ap.n_heads = 1;
  ap.token_seq = &seq;
  ap.positions = &pos;
  absl::Status st = LaunchPagedAttention(ap);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("block id 7"), absl::string_view::npos) << st;
  pos = 8;  // beyond the 2-block table
  st = LaunchPagedAttention(ap);
  EXPECT_NE(st.message().find("outside the block table"), absl::string_view::npos) << st;
  seq = 3;
  pos = 0;
  EXPECT_FALSE(LaunchPagedAttention(ap).ok());
}

// Batch invariance with quantised caches: a token's attention output is bit
// identical whether it runs alone or in a batch with other sequences' tokens,
// and writing K/V one token at a time (decode) stores the same bytes as one
// batched write (prefill).
TEST(PagedAttention, QuantisedBatchInvariance) {
  for (KvDtype dtype :
       {KvDtype::kFp8E4M3, KvDtype::kInt8, KvDtype::kF16, KvDtype::kBF16, KvDtype::kFp8E4M3Unscaled}) {
    for (SimdLevel level : Levels()) {
      SCOPED_TRACE(std::string(KvDtypeName(dtype)) + " " + std::string(SimdLevelName(level)));
      Case c;
      c.head_dim = 64;
      c.block_size = 16;
      c.dtype = dtype;
      const std::vector<int> lens = {37, 5, 20};
      const int n_seqs = 3, max_blocks = 3, num_blocks = 1 + n_seqs * max_blocks;
      std::vector<int32_t> tables(n_seqs * max_blocks);
      std::iota(tables.begin(), tables.end(), 1);
      std::vector<int32_t> token_seq, positions;
      for (int s = 0; s < n_seqs; ++s) {
        for (int p = 0; p < lens[s]; ++p) {
          token_seq.push_back(s);
          positions.push_back(p);
        }
      }
      const int T = static_cast<int>(token_seq.size());
      const int kv_dim = c.n_kv_heads * c.head_dim, q_dim = c.n_heads * c.head_dim;
      std::mt19937 rng(9);
      std::normal_distribution<float> nd(0.0f, 2.0f);
      std::vector<float> q(T * q_dim), k(T * kv_dim), v(T * kv_dim);
      for (auto* vec : {&q, &k, &v}) for (float& x : *vec) x = nd(rng);
      Pools batched, single;
      MakePools(c, num_blocks, &batched);
      MakePools(c, num_blocks, &single);
      for (Pools* p : {&batched, &single}) {
        p->view.block_tables = tables.data();
        p->view.max_blocks_per_seq = max_blocks;
        p->view.n_seqs = n_seqs;
      }
      KvWriteParams wp;
      wp.kv = batched.view;
      wp.k = k.data();
      wp.v = v.data();
      wp.k_stride = kv_dim;
      wp.v_stride = kv_dim;
      wp.tokens = T;
      wp.token_seq = token_seq.data();
      wp.positions = positions.data();
      ASSERT_TRUE(LaunchKvWrite(wp).ok());
      for (int t = 0; t < T; ++t) {  // one token per call, interleaving nothing else
        KvWriteParams one = wp;
        one.kv = single.view;
        one.k = k.data() + t * kv_dim;
        one.v = v.data() + t * kv_dim;
        one.tokens = 1;
        one.token_seq = token_seq.data() + t;
        one.positions = positions.data() + t;
        ASSERT_TRUE(LaunchKvWrite(one).ok());
      }
      EXPECT_EQ(batched.k, single.k);
      EXPECT_EQ(batched.v, single.v);
      EXPECT_EQ(0, std::memcmp(batched.ks.data(), single.ks.data(), batched.ks.size() * 4));
      EXPECT_EQ(0, std::memcmp(batched.vs.data(), single.vs.data(), batched.vs.size() * 4));

      auto pool = ThreadPool::Create(2).value();
      std::vector<float> all(T * q_dim);
      PagedAttentionParams ap;
      ap.kv = batched.view;
      ap.q = q.data();
      ap.q_stride = q_dim;
      ap.out = all.data();
      ap.tokens = T;
      ap.n_heads = c.n_heads;
      ap.token_seq = token_seq.data();
      ap.positions = positions.data();
      ap.scale = 0.125f;
      ap.pool = pool.get();
      ASSERT_TRUE(LaunchPagedAttentionWithLevel(ap, level).ok());
      for (int t = 0; t < T; ++t) {
        std::vector<float> alone(q_dim);
        PagedAttentionParams a1 = ap;
        a1.q = q.data() + t * q_dim;
        a1.out = alone.data();
        a1.tokens = 1;
        a1.token_seq = token_seq.data() + t;
        a1.positions = positions.data() + t;
        a1.pool = nullptr;
        ASSERT_TRUE(LaunchPagedAttentionWithLevel(a1, level).ok());
        ASSERT_EQ(0, std::memcmp(alone.data(), all.data() + t * q_dim, q_dim * sizeof(float))) << "token " << t;
      }
    }
  }
}

TEST(PagedAttention, QuantisedViewNeedsScales) {
  std::vector<uint8_t> pool(2 * 1 * 4 * 8);
  std::vector<float> scales(2 * 4);
  std::vector<int32_t> table = {1};
  PagedKvView view;
  view.k = pool.data();
  view.v = pool.data();
  view.dtype = KvDtype::kInt8;
  view.num_blocks = 2;
  view.block_size = 4;
  view.n_kv_heads = 1;
  view.head_dim = 8;
  view.block_tables = table.data();
  view.max_blocks_per_seq = 1;
  view.n_seqs = 1;
  std::vector<float> x(8, 1.0f);
  int32_t seq = 0, pos = 0;
  KvWriteParams wp;
  wp.kv = view;
  wp.k = x.data();
  wp.v = x.data();
  wp.k_stride = 8;
  wp.v_stride = 8;
  wp.tokens = 1;
  wp.token_seq = &seq;
  wp.positions = &pos;
  absl::Status st = LaunchKvWrite(wp);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("scale"), absl::string_view::npos) << st;
  wp.kv.k_scale = scales.data();
  wp.kv.v_scale = scales.data();
  EXPECT_TRUE(LaunchKvWrite(wp).ok());
  wp.kv.dtype = static_cast<KvDtype>(9);
  EXPECT_FALSE(LaunchKvWrite(wp).ok());
}

TEST(PagedKvView, PoolBytesAndOverflow) {
  KvPoolBytes b;
  ASSERT_TRUE(ComputeKvPoolBytes(KvDtype::kF16, 10, 3, 16, 64, &b));
  EXPECT_EQ(b.data, 10 * 3 * 16 * 64 * 2);
  EXPECT_EQ(b.scales, 0);
  ASSERT_TRUE(ComputeKvPoolBytes(KvDtype::kBF16, 10, 3, 16, 64, &b));
  EXPECT_EQ(b.data, 10 * 3 * 16 * 64 * 2);
  EXPECT_EQ(b.scales, 0);
  ASSERT_TRUE(ComputeKvPoolBytes(KvDtype::kFp8E4M3, 10, 3, 16, 64, &b));
  EXPECT_EQ(b.data, 10 * 3 * 16 * 64);
  EXPECT_EQ(b.scales, 10 * 3 * 16 * 4);
  ASSERT_TRUE(ComputeKvPoolBytes(KvDtype::kInt8, 10, 3, 16, 64, &b));
  EXPECT_EQ(b.data + b.scales, 10 * 3 * 16 * (64 + 4));
  ASSERT_TRUE(ComputeKvPoolBytes(KvDtype::kFp8E4M3Unscaled, 10, 3, 16, 64, &b));
  EXPECT_EQ(b.data, 10 * 3 * 16 * 64);  // exactly half of F16, no scale pool
  EXPECT_EQ(b.scales, 0);
  EXPECT_FALSE(KvDtypeHasScales(KvDtype::kFp8E4M3Unscaled));
  EXPECT_FALSE(ComputeKvPoolBytes(KvDtype::kF32, int64_t{1} << 40, 1 << 10, 1 << 10, 1 << 10, &b));
  EXPECT_FALSE(ComputeKvPoolBytes(KvDtype::kF32, -1, 1, 1, 1, &b));
  EXPECT_FALSE(ComputeKvPoolBytes(static_cast<KvDtype>(9), 1, 1, 1, 1, &b));
}

}  // namespace
}  // namespace strata
