// Parity of LaunchMatMul at every SIMD level this CPU has against
// ReferenceMatMul (dequantize + f64 dot), for every supported weight type.
//
// Tolerance per output element y = sum_i w_i x_i (w_i dequantized weights):
//   float types (F32/F16/BF16):  |y - ref| <= 2e-5 * L1 + 1e-6,  L1 = sum |w_i x_i|
//     (f32 accumulation order only; weights are exact in f32).
//   quantized types:             |y - ref| <= sum_i |w_i| * amax(block(i)) / 254 * 1.001
//                                             + 2e-5 * L1 + 1e-6
//     The kernels multiply against the input quantized to 8 bits per block
//     (32 values for Q4_0/Q4_1/Q8_0, 256 for k-quants), whose element error is
//     at most amax(block) / 254; the rest is f32 accumulation.
// Second, tight check for the quantized types: against the dot of the
// dequantized weights with the *quantized* input (same quantizer, f64 dot):
//                                |y - ref_q| <= 2e-5 * L1q + 1e-6
// which pins the kernels' integer arithmetic (a 1% error in one term fails).
// Outputs are poisoned with NaN first; padding columns of output_stride must
// stay NaN, all others must be written. Weight rows carry NaN-filled padding
// (weight_row_stride > row bytes) that must not be read into the result.
#include "kernels/cpu/matmul.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/quantize_activations.h"

namespace strata {
namespace {

constexpr TensorType kTypes[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                                 TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_1,
                                 TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K};

bool IsFloatType(TensorType t) {
  return t == TensorType::kF32 || t == TensorType::kF16 || t == TensorType::kBF16;
}

// Offsets of f16 scale fields inside a block, set to sane values so random
// bytes make a valid block.
std::vector<int> ScaleOffsets(TensorType t) {
  switch (t) {
    case TensorType::kQ8_0:
    case TensorType::kQ4_0:
      return {0};
    case TensorType::kQ4_1:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
      return {0, 2};
    case TensorType::kQ6_K:
      return {208};
    default:
      return {};
  }
}

// One row of `cols` random values of `type` at dst (RowBytes bytes).
void RandomRow(TensorType type, int64_t cols, std::mt19937* rng, uint8_t* dst) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  if (IsFloatType(type)) {
    for (int64_t i = 0; i < cols; ++i) {
      const float v = u(*rng);
      if (type == TensorType::kF32) {
        std::memcpy(dst + 4 * i, &v, 4);
      } else {
        const uint16_t h = type == TensorType::kF16 ? F32ToF16(v)
                                                    : static_cast<uint16_t>(BitsFromF32(v) >> 16);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    }
    return;
  }
  const int64_t nb = cols / BlockSize(type), bb = BlockBytes(type);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  for (int64_t i = 0; i < nb * bb; ++i) dst[i] = static_cast<uint8_t>(byte(*rng));
  for (int64_t b = 0; b < nb; ++b) {
    for (int off : ScaleOffsets(type)) {
      const float s = scale(*rng) * (byte(*rng) & 1 ? 1.0f : -1.0f);
      const uint16_t h = F32ToF16(s);
      std::memcpy(dst + b * bb + off, &h, 2);
    }
  }
}

struct Problem {
  TensorType type;
  int64_t rows, cols, tokens, row_pad_bytes, out_pad;
  std::vector<uint8_t> weight;
  std::vector<float> input;
  int64_t row_stride() const { return *RowBytes(type, cols) + row_pad_bytes; }
};

Problem MakeProblem(TensorType type, int64_t rows, int64_t cols, int64_t tokens, int64_t row_pad,
                    int64_t out_pad, uint32_t seed) {
  Problem p{type, rows, cols, tokens, row_pad, out_pad, {}, {}};
  std::mt19937 rng(seed);
  p.weight.assign(static_cast<size_t>(p.row_stride() * rows), 0xFF);  // padding = NaN bytes
  for (int64_t r = 0; r < rows; ++r) RandomRow(type, cols, &rng, p.weight.data() + r * p.row_stride());
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  p.input.resize(static_cast<size_t>(tokens * cols));
  for (float& x : p.input) {
    do x = u(rng); while (x == 0.0f);
  }
  return p;
}

MatMulParams ParamsFor(const Problem& p, float* out, ThreadPool* pool) {
  MatMulParams m;
  m.weight_type = p.type;
  m.weight = p.weight.data();
  m.weight_row_stride = p.row_pad_bytes == 0 ? 0 : p.row_stride();
  m.rows = p.rows;
  m.cols = p.cols;
  m.input = p.input.data();
  m.tokens = p.tokens;
  m.output = out;
  m.output_stride = p.out_pad == 0 ? 0 : p.rows + p.out_pad;
  m.pool = pool;
  return m;
}

// Checks `got` against the reference with the tolerance described above.
void ExpectClose(const Problem& p, const std::vector<float>& got, const std::string& what) {
  const int64_t os = p.rows + p.out_pad;
  std::vector<float> ref(got.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> ref_out(got.size());
  MatMulParams m = ParamsFor(p, ref.data(), nullptr);
  ASSERT_TRUE(ReferenceMatMul(m).ok());
  const bool quant = !IsFloatType(p.type);
  const int64_t qblock = BlockSize(p.type) == 256 ? 256 : 32;
  // The input as the kernels see it: quantized to 8 bits per block.
  std::vector<float> xq(p.input.size());
  if (quant) {
    for (int64_t t = 0; t < p.tokens; ++t) {
      const float* x = p.input.data() + t * p.cols;
      float* y = xq.data() + t * p.cols;
      if (qblock == 32) {
        std::vector<float> q(Q8Act32RowBytes(p.cols) / 4);
        QuantizeRowQ8Act32(x, q.data(), p.cols);
        const Q8Act32Row v = ViewQ8Act32(q.data(), p.cols);
        for (int64_t i = 0; i < p.cols; ++i) y[i] = v.ds[2 * (i / 32)] * v.qs[i];
      } else {
        std::vector<BlockQ8ActK> q(p.cols / 256);
        QuantizeRowQ8ActK(x, q.data(), p.cols);
        for (int64_t i = 0; i < p.cols; ++i) y[i] = q[i / 256].d * q[i / 256].qs[i % 256];
      }
    }
  }
  std::vector<float> w(p.cols);
  int failures = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    ASSERT_TRUE(DequantizeRow(p.type, p.weight.data() + r * p.row_stride(), w.data(), p.cols).ok());
    for (int64_t t = 0; t < p.tokens; ++t) {
      const float* x = p.input.data() + t * p.cols;
      if (quant) {
        const float* y = xq.data() + t * p.cols;
        double dot = 0.0, l1q = 0.0;
        for (int64_t i = 0; i < p.cols; ++i) {
          dot += static_cast<double>(w[i]) * y[i];
          l1q += std::fabs(static_cast<double>(w[i]) * y[i]);
        }
        const double tolq = 2e-5 * l1q + 1e-6;
        const float yk = got[t * os + r];
        if (!(std::fabs(yk - dot) <= tolq) && ++failures <= 5) {
          ADD_FAILURE() << what << " row " << r << " token " << t << ": got " << yk
                        << " want (quantized input) " << dot << " tol " << tolq;
        }
      }
      double l1 = 0.0, qerr = 0.0;
      for (int64_t b = 0; b < p.cols; b += qblock) {
        double amax = 0.0, wsum = 0.0;
        for (int64_t i = b; i < std::min(p.cols, b + qblock); ++i) {
          amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
          wsum += std::fabs(static_cast<double>(w[i]));
          l1 += std::fabs(static_cast<double>(w[i]) * x[i]);
        }
        qerr += wsum * amax / 254.0 * 1.001;
      }
      const double tol = (quant ? qerr : 0.0) + 2e-5 * l1 + 1e-6;
      const float y = got[t * os + r];
      const float want = ref[t * os + r];
      if (!(std::fabs(static_cast<double>(y) - want) <= tol) && ++failures <= 5) {
        ADD_FAILURE() << what << " row " << r << " token " << t << ": got " << y << " want " << want
                      << " tol " << tol;
      }
    }
    for (int64_t t = 0; t < p.tokens; ++t) {
      for (int64_t c = p.rows; c < os; ++c) {
        if (!std::isnan(got[t * os + c]) && ++failures <= 5) {
          ADD_FAILURE() << what << " wrote output padding at token " << t << " column " << c;
        }
      }
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

class MatMulParity : public ::testing::TestWithParam<std::tuple<TensorType, SimdLevel>> {};

TEST_P(MatMulParity, MatchesReference) {
  const auto [type, level] = GetParam();
  if (static_cast<int>(level) > static_cast<int>(HardwareSimdLevel())) {
    GTEST_SKIP() << "CPU lacks " << SimdLevelName(level);
  }
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE(pool.ok());
  const int64_t bs = BlockSize(type);
  // Column counts: a few blocks, and a model-sized row. Float types also get
  // a length that is not a multiple of any vector width.
  std::vector<int64_t> col_list = bs == 256   ? std::vector<int64_t>{256, 768}
                                  : bs == 32  ? std::vector<int64_t>{160, 576}
                                              : std::vector<int64_t>{77, 576};
  uint32_t seed = 1;
  for (int64_t cols : col_list) {
    for (int64_t tokens : {1, 3, 17}) {
      // 333 rows x 17 tokens is above LaunchMatMul's 1 MiB threshold for
      // using the pool at model-sized cols, so the threaded cases there run
      // the parallel path.
      for (int64_t rows : {1, 37, 333}) {
        for (bool padded : {false, true}) {
          for (bool threaded : {false, true}) {
            const int64_t row_pad = padded ? (type == TensorType::kF32 ? 12 : 6) : 0;
            const int64_t out_pad = padded ? 5 : 0;
            Problem p = MakeProblem(type, rows, cols, tokens, row_pad, out_pad, seed++);
            std::vector<float> out(static_cast<size_t>(tokens * (rows + out_pad)),
                                   std::numeric_limits<float>::quiet_NaN());
            MatMulParams m = ParamsFor(p, out.data(), threaded ? pool->get() : nullptr);
            const absl::Status s = LaunchMatMulWithLevel(m, level);
            ASSERT_TRUE(s.ok()) << s;
            ExpectClose(p, out, absl::StrCat(TensorTypeName(type), "/", std::string(SimdLevelName(level)), " cols=",
                                             cols, " tokens=", tokens, " rows=", rows,
                                             " padded=", padded, " threaded=", threaded));
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypesAllLevels, MatMulParity,
    ::testing::Combine(::testing::ValuesIn(kTypes),
                       ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512)),
    [](const auto& info) {
      return absl::StrCat(TensorTypeName(std::get<0>(info.param)), "_",
                          std::string(SimdLevelName(std::get<1>(info.param))));
    });

TEST(MatMul, DefaultLevelMatchesReference) {
  Problem p = MakeProblem(TensorType::kQ4_1, 64, 576, 3, 0, 0, 99);
  std::vector<float> out(3 * 64, std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE(LaunchMatMul(ParamsFor(p, out.data(), nullptr)).ok());
  ExpectClose(p, out, "default level");
}

TEST(MatMul, RejectsBadParams) {
  Problem p = MakeProblem(TensorType::kQ8_0, 4, 64, 1, 0, 0, 7);
  std::vector<float> out(4);
  const MatMulParams good = ParamsFor(p, out.data(), nullptr);
  ASSERT_TRUE(LaunchMatMul(good).ok());
  auto expect_invalid = [&](MatMulParams m, const char* what) {
    EXPECT_EQ(LaunchMatMul(m).code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_EQ(ReferenceMatMul(m).code(), absl::StatusCode::kInvalidArgument) << what;
  };
  MatMulParams m = good;
  m.cols = 48;
  expect_invalid(m, "cols not a multiple of 32");
  m = good;
  m.weight_type = TensorType::kQ5_0;
  expect_invalid(m, "unsupported type");
  m = good;
  m.weight = nullptr;
  expect_invalid(m, "null weight");
  m = good;
  m.output = nullptr;
  expect_invalid(m, "null output");
  m = good;
  m.input = nullptr;
  expect_invalid(m, "null input");
  m = good;
  m.output_stride = 3;
  expect_invalid(m, "output_stride < rows");
  m = good;
  m.weight_row_stride = 60;
  expect_invalid(m, "row stride < row bytes");
  m = good;
  m.weight_row_stride = 69;
  expect_invalid(m, "odd row stride");
  m = good;
  m.rows = -1;
  expect_invalid(m, "negative rows");
  m = good;
  m.rows = int64_t{1} << 60;
  m.output_stride = m.rows;
  expect_invalid(m, "rows x row stride overflows");
}

TEST(MatMul, EmptyShapesAreNoOps) {
  MatMulParams m;
  m.weight_type = TensorType::kQ4_1;
  EXPECT_TRUE(LaunchMatMul(m).ok());  // rows = tokens = 0, all null
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// Batch invariance: a token's outputs are bit-identical whether it is
// multiplied alone (the decode path) or with other tokens (the prefill path),
// on one thread or many. The engine relies on it for "same seed, same
// output" under continuous batching: with 8-bit activations, one ulp of
// difference can flip a rounding in a later layer and change the text.
class MatMulBatchInvariance : public ::testing::TestWithParam<std::tuple<TensorType, SimdLevel>> {};

TEST_P(MatMulBatchInvariance, TokensAloneEqualTokensTogether) {
  const auto [type, level] = GetParam();
  if (static_cast<int>(level) > static_cast<int>(HardwareSimdLevel())) {
    GTEST_SKIP() << "CPU lacks " << SimdLevelName(level);
  }
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE(pool.ok());
  const int64_t cols = BlockSize(type) == 256 ? 768 : 576;
  const int64_t rows = 333, tokens = 7;
  Problem p = MakeProblem(type, rows, cols, tokens, 0, 0, 2024);
  std::vector<float> together(tokens * rows);
  ASSERT_TRUE(LaunchMatMulWithLevel(ParamsFor(p, together.data(), pool->get()), level).ok());
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<float> alone(rows);
    MatMulParams m = ParamsFor(p, alone.data(), t % 2 ? pool->get() : nullptr);
    m.input = p.input.data() + t * cols;
    m.tokens = 1;
    ASSERT_TRUE(LaunchMatMulWithLevel(m, level).ok());
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_EQ(BitsFromF32(alone[r]), BitsFromF32(together[t * rows + r]))
          << TensorTypeName(type) << "/" << SimdLevelName(level) << " token " << t << " row " << r << ": "
          << alone[r] << " vs " << together[t * rows + r];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypesAllLevels, MatMulBatchInvariance,
    ::testing::Combine(::testing::ValuesIn(kTypes),
                       ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512)),
    [](const auto& info) {
      return absl::StrCat(TensorTypeName(std::get<0>(info.param)), "_",
                          std::string(SimdLevelName(std::get<1>(info.param))));
    });

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// LaunchMatMuls: matrices sharing one input give, each, exactly what their own
// LaunchMatMul gives, on one thread or many; unrelated inputs still work.
TEST(MatMuls, GroupEqualsSeparateCalls) {
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE(pool.ok());
  for (TensorType type : {TensorType::kQ4_1, TensorType::kQ8_0, TensorType::kQ6_K, TensorType::kF16}) {
    const int64_t cols = BlockSize(type) == 256 ? 512 : 576;
    for (int64_t tokens : {1, 5}) {
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), pool->get()}) {
        // Q, K, V shapes; the first problem's input is shared by all three.
        Problem q = MakeProblem(type, 576, cols, tokens, 0, 0, 11);
        Problem k = MakeProblem(type, 192, cols, tokens, 0, 0, 12);
        Problem v = MakeProblem(type, 1536, cols, tokens, 0, 0, 13);
        k.input = q.input;
        v.input = q.input;
        std::vector<float> oq(tokens * 576), ok(tokens * 192), ov(tokens * 1536);
        std::vector<float> sq = oq, sk = ok, sv = ov;
        MatMulParams pq = ParamsFor(q, oq.data(), tp), pk = ParamsFor(k, ok.data(), tp), pv = ParamsFor(v, ov.data(), tp);
        pk.input = pq.input;
        pv.input = pq.input;
        const MatMulParams group[] = {pq, pk, pv};
        ASSERT_TRUE(LaunchMatMuls(group).ok());
        pq.output = sq.data();
        pk.output = sk.data();
        pv.output = sv.data();
        ASSERT_TRUE(LaunchMatMul(pq).ok());
        ASSERT_TRUE(LaunchMatMul(pk).ok());
        ASSERT_TRUE(LaunchMatMul(pv).ok());
        for (size_t i = 0; i < oq.size(); ++i) ASSERT_EQ(BitsFromF32(oq[i]), BitsFromF32(sq[i])) << i;
        for (size_t i = 0; i < ok.size(); ++i) ASSERT_EQ(BitsFromF32(ok[i]), BitsFromF32(sk[i])) << i;
        for (size_t i = 0; i < ov.size(); ++i) ASSERT_EQ(BitsFromF32(ov[i]), BitsFromF32(sv[i])) << i;
      }
    }
  }
}

TEST(MatMuls, UnrelatedInputsAndErrors) {
  Problem a = MakeProblem(TensorType::kQ4_1, 64, 576, 2, 0, 0, 21);
  Problem b = MakeProblem(TensorType::kQ8_0, 32, 160, 3, 0, 0, 22);
  std::vector<float> oa(2 * 64, std::numeric_limits<float>::quiet_NaN()), ob(3 * 32, std::numeric_limits<float>::quiet_NaN());
  const MatMulParams group[] = {ParamsFor(a, oa.data(), nullptr), ParamsFor(b, ob.data(), nullptr)};
  ASSERT_TRUE(LaunchMatMuls(group).ok());
  ExpectClose(a, oa, "unrelated a");
  ExpectClose(b, ob, "unrelated b");
  MatMulParams bad = group[1];
  bad.output = nullptr;
  const MatMulParams with_bad[] = {group[0], bad};
  EXPECT_EQ(LaunchMatMuls(with_bad).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata
