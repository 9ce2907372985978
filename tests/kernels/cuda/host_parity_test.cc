// Parity of the CUDA kernels, run on the host harness, against the CPU reference ops.
// Inputs are random and never zero, sizes are odd, outputs start as NaN so an
// unwritten element fails. Tolerances (per op, why):
//   RMSNorm: 1e-5 relative + 1e-6 absolute (float vs double sum of squares)
//   RoPE:    1e-6 relative + 1e-6 absolute (same double angle, float rotation)
//   SwiGLU:  1e-6 relative + 1e-7 absolute (same formula, libm expf)
//   Embedding: bit-exact for every dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K,
//              Q6_K) against DequantizeRow, the CpuBackend::EmbeddingLookup reference:
//              the same decodes and the same mul/add order without FMA (NaN payloads of
//              F16/BF16 codes included; quantised tables here have finite scales)
//   ResidualAdd, BiasAdd, GatherRows: bit-exact (one f32 add per element, or a copy)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/tensor_type.h"
#include "gtest/gtest.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cuda/host/host_ops.h"

namespace strata::cuda {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> RandomNonZero(size_t n, uint32_t seed, float lo = 0.05f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel,
                 float abs, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isfinite(got[i]) &&
                    std::fabs(got[i] - want[i]) <= abs + rel * std::fabs(want[i]);
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CudaHostParity, RmsNormResidualMatchesCpu) {
  for (int64_t cols : {577, 64, 2048 + 3, 1}) {
    const int64_t rows = 7;
    const auto x = RandomNonZero(rows * cols, 1 + cols);
    const auto res0 = RandomNonZero(rows * cols, 2 + cols);
    const auto w = RandomNonZero(cols, 3 + cols, 0.5f, 1.5f);
    // Reference: h = x + residual, then the CPU RMSNorm of h.
    std::vector<float> h(rows * cols), want(rows * cols, kNaN);
    for (size_t i = 0; i < h.size(); ++i) h[i] = x[i] + res0[i];
    ASSERT_TRUE(strata::LaunchRmsNorm({h.data(), w.data(), want.data(), rows, cols, 1e-5f}).ok());

    std::vector<float> res = res0, out(rows * cols, kNaN);
    RmsNormResidualParams p{x.data(), res.data(), w.data(), out.data(), rows, cols, 1e-5f};
    ASSERT_TRUE(HostRunRmsNormResidual(p).ok());
    ExpectClose(out, want, 1e-5f, 1e-6f, "out");
    ExpectClose(res, h, 0, 0, "residual written back");

    // Without a residual, in place (out aliases x): exactly the CPU op.
    std::vector<float> io = x, want2(rows * cols, kNaN);
    ASSERT_TRUE(strata::LaunchRmsNorm({x.data(), w.data(), want2.data(), rows, cols, 1e-5f}).ok());
    RmsNormResidualParams q{io.data(), nullptr, w.data(), io.data(), rows, cols, 1e-5f};
    ASSERT_TRUE(HostRunRmsNormResidual(q).ok());
    ExpectClose(io, want2, 1e-5f, 1e-6f, "in place");
  }
}

TEST(CudaHostParity, RmsNormResidualRejectsBadParams) {
  std::vector<float> a(8, 1.0f), w(8, 1.0f);
  EXPECT_FALSE(HostRunRmsNormResidual({nullptr, nullptr, w.data(), a.data(), 1, 8, 1e-5f}).ok());
  EXPECT_FALSE(HostRunRmsNormResidual({a.data(), a.data(), w.data(), a.data(), 1, 8, 1e-5f}).ok());
  EXPECT_FALSE(HostRunRmsNormResidual({a.data(), nullptr, w.data(), a.data(), 1, 0, 1e-5f}).ok());
  EXPECT_TRUE(HostRunRmsNormResidual({a.data(), nullptr, w.data(), a.data(), 0, 8, 1e-5f}).ok());
}

TEST(CudaHostParity, RopeMatchesCpu) {
  for (bool neox : {false, true}) {
    for (int64_t head_dim : {64, 18, 256}) {
      const int64_t tokens = 7, heads = 5, stride = heads * head_dim + 3;  // padded rows
      const auto x0 = RandomNonZero(tokens * stride, 11 + head_dim + neox);
      std::vector<int32_t> pos(tokens);
      for (int64_t t = 0; t < tokens; ++t) pos[t] = static_cast<int32_t>(t * 613 + 1);
      std::vector<float> inv(head_dim / 2);
      for (size_t i = 0; i < inv.size(); ++i) {
        inv[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / head_dim));
      }
      std::vector<float> want = x0, got = x0;
      ASSERT_TRUE(strata::LaunchRope({want.data(), tokens, heads, head_dim, stride, pos.data(),
                                      inv.data(), neox}).ok());
      ASSERT_TRUE(HostRunRope({got.data(), tokens, heads, head_dim, stride, pos.data(),
                               inv.data(), neox}).ok());
      ExpectClose(got, want, 1e-6f, 1e-6f, neox ? "neox" : "interleaved");
    }
  }
  std::vector<float> x(6, 1.0f), inv(3, 1.0f);
  std::vector<int32_t> pos(1, 0);
  EXPECT_FALSE(HostRunRope({x.data(), 1, 1, 5, 0, pos.data(), inv.data(), false}).ok());
}

TEST(CudaHostParity, SwiGluMatchesCpu) {
  for (int64_t n : {int64_t{1}, int64_t{577}, int64_t{7 * 1537}}) {
    const auto gate = RandomNonZero(n, 21 + n, 0.01f, 8.0f);
    const auto up = RandomNonZero(n, 22 + n);
    std::vector<float> want(n, kNaN), got(n, kNaN);
    ASSERT_TRUE(strata::LaunchSwiGlu({gate.data(), up.data(), want.data(), n}).ok());
    ASSERT_TRUE(HostRunSwiGlu({gate.data(), up.data(), got.data(), n}).ok());
    ExpectClose(got, want, 1e-6f, 1e-7f, "swiglu");
    std::vector<float> io = gate;  // out aliases gate
    ASSERT_TRUE(HostRunSwiGlu({io.data(), up.data(), io.data(), n}).ok());
    ExpectClose(io, want, 1e-6f, 1e-7f, "swiglu in place");
  }
}

// --- embedding ------------------------------------------------------------------

constexpr EmbeddingDtype kAllEmbeddingDtypes[] = {
    EmbeddingDtype::kF32,  EmbeddingDtype::kF16,  EmbeddingDtype::kBF16,
    EmbeddingDtype::kQ8_0, EmbeddingDtype::kQ4_0, EmbeddingDtype::kQ4_1,
    EmbeddingDtype::kQ4_K, EmbeddingDtype::kQ5_K, EmbeddingDtype::kQ6_K};

// Values per block: 1 for F32/F16/BF16.
int64_t BlockValues(EmbeddingDtype dt) {
  switch (dt) {
    case EmbeddingDtype::kQ8_0:
    case EmbeddingDtype::kQ4_0:
    case EmbeddingDtype::kQ4_1:
      return 32;
    case EmbeddingDtype::kQ4_K:
    case EmbeddingDtype::kQ5_K:
    case EmbeddingDtype::kQ6_K:
      return 256;
    default:
      return 1;
  }
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

// `rows` table rows of `dim` elements in `dt`, `row_stride` bytes apart, starting
// `offset` bytes into the buffer. Values are random and non-zero (quantised: random
// quants, f16 scales in [1e-3, 0.1] and some f16-subnormal scales); row padding and
// the bytes before `offset` are 0xFF (NaN as f16/f32), so reading them shows.
std::vector<uint8_t> RandomTable(EmbeddingDtype dt, int64_t rows, int64_t dim, int64_t row_stride,
                                 int64_t offset, uint32_t seed) {
  std::vector<uint8_t> buf(offset + rows * row_stride, 0xFF);
  std::mt19937 rng(seed);
  const auto vals = RandomNonZero(rows * dim, seed + 1);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = buf.data() + offset + r * row_stride;
    const float* v = vals.data() + r * dim;
    switch (dt) {
      case EmbeddingDtype::kF32:
        std::memcpy(row, v, dim * sizeof(float));
        break;
      case EmbeddingDtype::kF16:
      case EmbeddingDtype::kBF16:
        for (int64_t i = 0; i < dim; ++i) {
          const uint16_t h = dt == EmbeddingDtype::kF16 ? F32ToF16(v[i])
                                                        : static_cast<uint16_t>(Bits(v[i]) >> 16);
          std::memcpy(row + 2 * i, &h, 2);
        }
        break;
      default: {
        // Random quants and sub-block scales; the f16 block scales (d, and m / dmin)
        // finite and non-zero, one in 8 an f16 subnormal.
        const int64_t bv = BlockValues(dt), bb = EmbeddingRowBytes(dt, bv);
        const int64_t d_at = dt == EmbeddingDtype::kQ6_K ? 208 : 0;
        const int n_scales = dt == EmbeddingDtype::kQ4_1 || dt == EmbeddingDtype::kQ4_K ||
                                     dt == EmbeddingDtype::kQ5_K ? 2 : 1;
        std::uniform_real_distribution<float> scale(1e-3f, 0.1f);
        for (int64_t b = 0; b < dim / bv; ++b) {
          uint8_t* blk = row + b * bb;
          for (int64_t i = 0; i < bb; ++i) blk[i] = static_cast<uint8_t>(rng());
          for (int f = 0; f < n_scales; ++f) {
            uint16_t h = F32ToF16((rng() & 1) ? -scale(rng) : scale(rng));
            if (rng() % 8 == 0) h = static_cast<uint16_t>((h & 0x8000) | (1 + rng() % 0x3FF));
            std::memcpy(blk + d_at + 2 * f, &h, 2);
          }
        }
      }
    }
  }
  return buf;
}

// The CpuBackend::EmbeddingLookup of `p` (host pointers): DequantizeRow or zeros, into
// a [tokens, dim] vector.
std::vector<float> ReferenceEmbedding(const EmbeddingParams& p) {
  std::vector<float> want(p.tokens * p.dim, kNaN);
  for (int64_t t = 0; t < p.tokens; ++t) {
    float* out = want.data() + t * p.dim;
    const int64_t id = p.ids[t];
    if (id < p.vocab_begin || id >= p.vocab_end) {
      std::fill_n(out, p.dim, 0.0f);
      continue;
    }
    const auto* row = static_cast<const uint8_t*>(p.table) + (id - p.vocab_begin) * p.row_stride;
    EXPECT_TRUE(DequantizeRow(static_cast<TensorType>(p.dtype), row, out, p.dim).ok());
  }
  return want;
}

// Bit for bit on the first dim floats of each out row, untouched (the NaN poison) after.
void ExpectEmbeddingRows(const std::vector<float>& out, int64_t out_stride,
                         const std::vector<float>& want, int64_t dim, const std::string& what) {
  int bad = 0;
  for (size_t t = 0; t < want.size() / dim; ++t) {
    for (int64_t d = 0; d < out_stride; ++d) {
      const float got = out[t * out_stride + d];
      const bool ok = d < dim ? Bits(got) == Bits(want[t * dim + d]) : Bits(got) == Bits(kNaN);
      if (!ok && ++bad <= 5) {
        ADD_FAILURE() << what << " token " << t << " [" << d << "] = " << got
                      << (d < dim ? ", want " : ", past dim: want untouched ")
                      << (d < dim ? want[t * dim + d] : kNaN);
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CudaHostParity, EmbeddingMatchesDequantizeRowEveryDtype) {
  // This rank holds ids [40, 63) of a 200-token vocabulary.
  const int64_t vocab_begin = 40, vocab_end = 63, vocab_total = 200;
  const std::vector<int32_t> ids = {40, 62, 41, 50, 50, 39, 63, 0, -1, 199, 200, 1000, -7, 55};
  const int64_t tokens = static_cast<int64_t>(ids.size());
  for (EmbeddingDtype dt : kAllEmbeddingDtypes) {
    const int64_t bv = BlockValues(dt);
    const std::vector<int64_t> dims = bv == 32    ? std::vector<int64_t>{32, 96, 1056}
                                      : bv == 256 ? std::vector<int64_t>{256, 1280}
                                                  : std::vector<int64_t>{1, 7, 33, 64, 1001, 1028};
    const int64_t esize = dt == EmbeddingDtype::kF32 ? 4 : 2;
    for (int64_t dim : dims) {
      const int64_t row_bytes = EmbeddingRowBytes(dt, dim);
      for (bool aligned : {true, false}) {
        // Aligned: 16-byte rows (vector paths where dim allows); else odd-aligned rows
        // (only the dtype's own alignment), a misaligned table start and out rows.
        const int64_t row_stride = aligned ? (row_bytes + 15) / 16 * 16 : row_bytes + esize;
        const int64_t offset = aligned ? 0 : esize;
        const int64_t out_stride = aligned ? (dim + 3) / 4 * 4 : dim + 1;
        const auto table = RandomTable(dt, vocab_end - vocab_begin, dim, row_stride, offset,
                                       static_cast<uint32_t>(dim * 7 + static_cast<int>(dt)));
        for (int64_t total : {vocab_total, int64_t{0}}) {
          std::vector<float> out(tokens * out_stride, kNaN);
          int bad = 0;
          const EmbeddingParams p{.table = table.data() + offset, .dtype = dt,
                                  .row_stride = row_stride, .ids = ids.data(), .out = out.data(),
                                  .tokens = tokens, .dim = dim, .vocab_begin = vocab_begin,
                                  .vocab_end = vocab_end, .out_stride = out_stride,
                                  .bad_ids = &bad, .vocab_total = total};
          const std::string what = "dtype " + std::to_string(static_cast<int>(dt)) + " dim " +
                                   std::to_string(dim) + (aligned ? " aligned" : " unaligned");
          ASSERT_TRUE(HostRunEmbedding(p).ok()) << what;
          ExpectEmbeddingRows(out, out_stride, ReferenceEmbedding(p), dim, what);
          EXPECT_EQ(bad, total > 0 ? 4 : 2) << what;  // -1, -7 (and 200, 1000 past the vocabulary)
        }
      }
    }
  }
}

TEST(CudaHostParity, EmbeddingPackedRowsAndNoCounter) {
  // row_stride 0 (packed rows), out_stride 0 (dim), bad_ids null.
  for (EmbeddingDtype dt : kAllEmbeddingDtypes) {
    const int64_t dim = std::max<int64_t>(64, BlockValues(dt)), rows = 9;
    const auto table = RandomTable(dt, rows, dim, EmbeddingRowBytes(dt, dim), 0, 5);
    const std::vector<int32_t> ids = {8, -3, 0, 4, 9};
    std::vector<float> out(ids.size() * dim, kNaN);
    EmbeddingParams p{.table = table.data(), .dtype = dt, .ids = ids.data(), .out = out.data(),
                      .tokens = 5, .dim = dim, .vocab_begin = 0, .vocab_end = rows};
    ASSERT_TRUE(HostRunEmbedding(p).ok());
    p.row_stride = EmbeddingRowBytes(dt, dim);  // the reference needs the stride
    ExpectEmbeddingRows(out, dim, ReferenceEmbedding(p), dim, "packed");
  }
}

TEST(CudaHostParity, EmbeddingDecodesEveryF16AndBf16Code) {
  // Row r, column c holds code r * 256 + c: all 65536 codes, NaNs and subnormals
  // included, bit for bit (F16/BF16 decodes are exact, NaN payloads too).
  std::vector<uint16_t> table(65536);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<uint16_t>(i);
  std::vector<int32_t> ids(256);
  for (int i = 0; i < 256; ++i) ids[i] = 255 - i;
  for (EmbeddingDtype dt : {EmbeddingDtype::kF16, EmbeddingDtype::kBF16}) {
    for (int64_t out_stride : {256, 257}) {  // float4 stores, then single floats
      std::vector<float> out(256 * out_stride, kNaN);
      const EmbeddingParams p{.table = table.data(), .dtype = dt, .row_stride = 512,
                              .ids = ids.data(), .out = out.data(), .tokens = 256, .dim = 256,
                              .vocab_begin = 0, .vocab_end = 256, .out_stride = out_stride};
      ASSERT_TRUE(HostRunEmbedding(p).ok());
      ExpectEmbeddingRows(out, out_stride, ReferenceEmbedding(p), 256,
                          dt == EmbeddingDtype::kF16 ? "every f16" : "every bf16");
    }
  }
}

TEST(CudaHostParity, EmbeddingShardsSumToTheFullLookup) {
  // Tensor-parallel vocabulary: 3 ranks hold [0, 17), [17, 34), [34, 50) of one table;
  // each writes its rows and zeros elsewhere, so the sum (the all-reduce) is the
  // unsharded lookup, bit for bit (x + 0 = x).
  const int64_t vocab = 50, dim = 96;
  const int64_t stride = EmbeddingRowBytes(EmbeddingDtype::kQ4_1, dim);
  const auto table = RandomTable(EmbeddingDtype::kQ4_1, vocab, dim, stride, 0, 77);
  const std::vector<int32_t> ids = {0, 16, 17, 33, 34, 49, 25, 25, 1};
  const int64_t tokens = static_cast<int64_t>(ids.size());
  EmbeddingParams full{.table = table.data(), .dtype = EmbeddingDtype::kQ4_1, .row_stride = stride,
                       .ids = ids.data(), .tokens = tokens, .dim = dim, .vocab_begin = 0,
                       .vocab_end = vocab, .vocab_total = vocab};
  std::vector<float> sum(tokens * dim, 0.0f);
  for (int64_t begin : {0, 17, 34}) {
    const int64_t end = std::min<int64_t>(begin + 17, vocab);
    std::vector<float> out(tokens * dim, kNaN);
    int bad = 0;
    EmbeddingParams p = full;
    p.table = table.data() + begin * stride;
    p.out = out.data();
    p.vocab_begin = begin;
    p.vocab_end = end;
    p.bad_ids = &bad;
    ASSERT_TRUE(HostRunEmbedding(p).ok());
    EXPECT_EQ(bad, 0);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += out[i];
  }
  ExpectEmbeddingRows(sum, dim, ReferenceEmbedding(full), dim, "sum of shards");
}

TEST(CudaHostParity, EmbeddingRejectsBadParams) {
  std::vector<float> table(64 * 4, 1.0f), out(64 * 4, kNaN);
  std::vector<int32_t> ids(4, 0);
  const EmbeddingParams ok{.table = table.data(), .ids = ids.data(), .out = out.data(),
                           .tokens = 4, .dim = 64, .vocab_begin = 0, .vocab_end = 4};
  ASSERT_TRUE(HostRunEmbedding(ok).ok());
  auto bad = [&](auto&& edit) {
    EmbeddingParams p = ok;
    edit(p);
    const absl::Status st = HostRunEmbedding(p);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  };
  bad([](EmbeddingParams& p) { p.table = nullptr; });
  bad([](EmbeddingParams& p) { p.ids = nullptr; });
  bad([](EmbeddingParams& p) { p.out = nullptr; });
  bad([](EmbeddingParams& p) { p.tokens = -1; });
  bad([](EmbeddingParams& p) { p.dim = 0; });
  bad([](EmbeddingParams& p) { p.dim = -64; });
  bad([](EmbeddingParams& p) { p.out_stride = 63; });
  bad([](EmbeddingParams& p) { p.vocab_begin = -1; });
  bad([](EmbeddingParams& p) { p.vocab_begin = 5; });  // > vocab_end
  bad([](EmbeddingParams& p) { p.vocab_total = 3; });  // < vocab_end
  bad([](EmbeddingParams& p) { p.vocab_total = -1; });
  bad([](EmbeddingParams& p) { p.dtype = static_cast<EmbeddingDtype>(6); });  // Q5_0
  bad([](EmbeddingParams& p) { p.dtype = static_cast<EmbeddingDtype>(15); });  // Q8_K
  bad([](EmbeddingParams& p) { p.dtype = EmbeddingDtype::kQ8_0; p.dim = 48; });  // not 32k
  bad([](EmbeddingParams& p) { p.dtype = EmbeddingDtype::kQ6_K; p.dim = 224; });  // not 256k
  bad([](EmbeddingParams& p) { p.row_stride = 255; });  // < 64 floats
  bad([](EmbeddingParams& p) { p.row_stride = 258; });  // F32 rows need 4-byte alignment
  bad([](EmbeddingParams& p) {
    p.table = reinterpret_cast<const uint8_t*>(p.table) + 2;
  });
  bad([](EmbeddingParams& p) {
    p.dtype = EmbeddingDtype::kF16;
    p.table = reinterpret_cast<const uint8_t*>(p.table) + 1;
  });
  // Empty work: fine, nothing written.
  EmbeddingParams none = ok;
  none.tokens = 0;
  none.out = out.data();
  std::vector<float> before = out;
  ASSERT_TRUE(HostRunEmbedding(none).ok());
  EXPECT_EQ(std::memcmp(before.data(), out.data(), out.size() * sizeof(float)), 0);
}

// --- residual add, bias add, gather rows --------------------------------------

// Bit for bit (one f32 add per element on both sides, or a copy); NaN padding too.
void ExpectExact(const float* got, const float* want, size_t n, const std::string& what) {
  int bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (Bits(got[i]) != Bits(want[i]) && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CudaHostParity, ResidualAddMatchesCpu) {
  // 1 << 20 | 5 is past one full grid (1024 blocks x 256 threads x 4): the stride loop.
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{1001}, int64_t{4099},
                    int64_t{(1 << 20) + 5}}) {
    const auto x0 = RandomNonZero(n + 1, 41 + n), y = RandomNonZero(n + 1, 42 + n);
    // (x, y) offsets: both aligned (float4), x misaligned, y misaligned.
    for (auto [ox, oy] : {std::pair{0, 0}, std::pair{1, 0}, std::pair{0, 1}}) {
      std::vector<float> want(n), x = x0;
      for (int64_t i = 0; i < n; ++i) want[i] = x0[ox + i] + y[oy + i];  // CpuBackend::Add
      ASSERT_TRUE(HostRunResidualAdd({x.data() + ox, y.data() + oy, n}).ok());
      const std::string what = "n " + std::to_string(n) + " offsets " + std::to_string(ox) +
                               "," + std::to_string(oy);
      ExpectExact(x.data() + ox, want.data(), n, what);
      EXPECT_EQ(Bits(x[ox ? 0 : n]), Bits(x0[ox ? 0 : n])) << what << ": element outside n";
      if (n > 5000) break;  // the long one once
    }
    std::vector<float> io = x0, want2(n);  // y aliases x: x = 2x
    for (int64_t i = 0; i < n; ++i) want2[i] = x0[i] + x0[i];
    ASSERT_TRUE(HostRunResidualAdd({io.data(), io.data(), n}).ok());
    ExpectExact(io.data(), want2.data(), n, "aliased");
  }
}

TEST(CudaHostParity, ResidualAddRejectsBadParams) {
  std::vector<float> a(4, 1.0f);
  EXPECT_EQ(HostRunResidualAdd({nullptr, a.data(), 4}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostRunResidualAdd({a.data(), nullptr, 4}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostRunResidualAdd({a.data(), a.data(), -1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HostRunResidualAdd({a.data(), a.data(), 0}).ok());
  EXPECT_EQ(a[0], 1.0f);
}

TEST(CudaHostParity, BiasAddMatchesCpu) {
  struct Case {
    int64_t rows, cols;
  };
  // 1025 x 1024 (float4) and 1025 x 1023 (floats) run past one full grid.
  for (Case c : {Case{1, 1}, Case{7, 33}, Case{5, 64}, Case{3, 1000}, Case{33, 7}, Case{1025, 1024},
                 Case{1025, 1023}}) {
    const bool big = c.rows > 1000;
    for (int64_t stride : {int64_t{0}, c.cols + 1, c.cols + 4}) {
      const int64_t s = stride ? stride : c.cols;
      const auto bias = RandomNonZero(c.cols + 1, 51 + c.cols);
      auto x0 = RandomNonZero(c.rows * s + 1, 52 + c.rows);
      for (int64_t r = 0; r < c.rows; ++r) {
        for (int64_t i = c.cols; i < s; ++i) x0[r * s + i] = kNaN;  // padding: must stay
      }
      for (int ob : {0, 1}) {  // bias aligned, misaligned
        std::vector<float> x = x0, want = x0;
        for (int64_t r = 0; r < c.rows; ++r) {
          for (int64_t i = 0; i < c.cols; ++i) want[r * s + i] += bias[ob + i];  // CpuBackend::AddBias
        }
        ASSERT_TRUE(HostRunBiasAdd({x.data(), bias.data() + ob, c.rows, c.cols, stride}).ok());
        const std::string what = std::to_string(c.rows) + "x" + std::to_string(c.cols) +
                                 " stride " + std::to_string(stride) + " bias+" + std::to_string(ob);
        ExpectExact(x.data(), want.data(), x.size(), what);
        if (big) break;
      }
      if (big) break;
    }
  }
}

TEST(CudaHostParity, BiasAddRejectsBadParams) {
  std::vector<float> x(8, 1.0f), b(8, 1.0f);
  auto code = [](const BiasAddParams& p) { return HostRunBiasAdd(p).code(); };
  EXPECT_EQ(code({nullptr, b.data(), 1, 8, 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({x.data(), nullptr, 1, 8, 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({x.data(), b.data(), -1, 8, 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({x.data(), b.data(), 1, -8, 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({x.data(), b.data(), 1, 8, 7}), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HostRunBiasAdd({x.data(), b.data(), 0, 8, 0}).ok());
  EXPECT_TRUE(HostRunBiasAdd({x.data(), b.data(), 1, 0, 0}).ok());
  EXPECT_EQ(x[0], 1.0f);
}

TEST(CudaHostParity, GatherRowsMatchesCpu) {
  const int64_t src_rows = 37;
  const std::vector<int32_t> rows = {3, 0, 36, 3, -1, 37, 12, 1000, 36, 20};  // 3 bad
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  for (int64_t cols : {1, 7, 33, 64, 1000, 1028}) {
    for (auto [src_stride, dst_stride] : {std::pair<int64_t, int64_t>{0, 0}, {cols + 1, cols + 4},
                                          {cols + 4, cols + 3}}) {
      const int64_t ss = src_stride ? src_stride : cols, ds = dst_stride ? dst_stride : cols;
      const auto src = RandomNonZero(src_rows * ss, 61 + cols);
      std::vector<float> dst(n_rows * ds, kNaN), want(n_rows * ds, kNaN);
      for (int64_t r = 0; r < n_rows; ++r) {  // CpuBackend::GatherRows; zeros for bad rows
        for (int64_t i = 0; i < cols; ++i) {
          const bool ok = rows[r] >= 0 && rows[r] < src_rows;
          want[r * ds + i] = ok ? src[rows[r] * ss + i] : 0.0f;
        }
      }
      int bad = 0;
      ASSERT_TRUE(HostRunGatherRows({src.data(), rows.data(), dst.data(), n_rows, cols, src_rows,
                                     src_stride, dst_stride, &bad}).ok());
      const std::string what = "cols " + std::to_string(cols) + " strides " +
                               std::to_string(src_stride) + "," + std::to_string(dst_stride);
      ExpectExact(dst.data(), want.data(), dst.size(), what);  // padding stays NaN in both
      EXPECT_EQ(bad, 3) << what;
    }
  }
  // No counter, one row.
  const auto src = RandomNonZero(5 * 3, 70);
  std::vector<float> dst(3, kNaN);
  const int32_t one = 4;
  ASSERT_TRUE(HostRunGatherRows({src.data(), &one, dst.data(), 1, 3, 5}).ok());
  ExpectExact(dst.data(), src.data() + 12, 3, "one row");
}

TEST(CudaHostParity, GatherRowsRejectsBadParams) {
  std::vector<float> src(8, 1.0f), dst(8, kNaN);
  const int32_t row = 0;
  auto code = [](const GatherRowsParams& p) { return HostRunGatherRows(p).code(); };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({nullptr, &row, dst.data(), 1, 8, 1}), kInvalid);
  EXPECT_EQ(code({src.data(), nullptr, dst.data(), 1, 8, 1}), kInvalid);
  EXPECT_EQ(code({src.data(), &row, nullptr, 1, 8, 1}), kInvalid);
  EXPECT_EQ(code({src.data(), &row, dst.data(), -1, 8, 1}), kInvalid);
  EXPECT_EQ(code({src.data(), &row, dst.data(), 1, -8, 1}), kInvalid);
  EXPECT_EQ(code({src.data(), &row, dst.data(), 1, 8, -1}), kInvalid);
  EXPECT_EQ(code({src.data(), &row, dst.data(), 1, 8, 1, 7, 0}), kInvalid);
  EXPECT_EQ(code({src.data(), &row, dst.data(), 1, 8, 1, 0, 7}), kInvalid);
  EXPECT_TRUE(HostRunGatherRows({src.data(), &row, dst.data(), 0, 8, 1}).ok());
  EXPECT_TRUE(std::isnan(dst[0]));
}

}  // namespace
}  // namespace strata::cuda
