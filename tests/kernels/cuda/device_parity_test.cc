// The nvcc-built launchers on a real GPU against the CPU reference ops. Skips (with a
// message) on machines without a CUDA device. Tolerances as in host_parity_test.cc,
// relaxed where device intrinsics differ from libm: RMSNorm 1e-5 rel (rsqrtf is
// within 2 ulp), RoPE 1e-5 abs (device cos/sin of double), SwiGLU 1e-5 rel (expf 2 ulp).
// Embedding (every dtype, against DequantizeRow), ResidualAdd, BiasAdd and GatherRows
// stay bit-exact on the device: no intrinsics, __fmul_rn/__fadd_rn where the CPU
// multiplies then adds (no FMA contraction), finite scales in the quantised tables.
#include <cuda_runtime_api.h>

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
#include "tests/kernels/cuda/device_test_util.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/launchers.h"

namespace strata::cuda {
namespace {

using ::strata::cuda::testing::DeviceBuffer;

std::vector<float> RandomNonZero(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.05f, 2.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (rng() & 1) ? -mag(rng) : mag(rng);
  return v;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel,
                 float abs) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= abs + rel * std::fabs(want[i])) && ++bad <= 5) {
      ADD_FAILURE() << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(CudaDevice, RmsNormResidualMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 7, cols = 577;
  const auto x = RandomNonZero(rows * cols, 1), r = RandomNonZero(rows * cols, 2);
  const auto w = RandomNonZero(cols, 3);
  std::vector<float> h(rows * cols), want(rows * cols);
  for (size_t i = 0; i < h.size(); ++i) h[i] = x[i] + r[i];
  ASSERT_TRUE(strata::LaunchRmsNorm({h.data(), w.data(), want.data(), rows, cols, 1e-5f}).ok());
  DeviceBuffer<float> dx(x), dr(r), dw(w),
      dout(std::vector<float>(rows * cols, std::numeric_limits<float>::quiet_NaN()));
  ASSERT_EQ(LaunchRmsNormResidual({dx.ptr, dr.ptr, dw.ptr, dout.ptr, rows, cols, 1e-5f}, nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(dout.Read(), want, 1e-5f, 1e-6f);
  ExpectClose(dr.Read(), h, 0, 0);
}

TEST(CudaDevice, RopeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (bool neox : {false, true}) {
    const int64_t tokens = 7, heads = 5, head_dim = 64;
    const auto x = RandomNonZero(tokens * heads * head_dim, 4 + neox);
    std::vector<int32_t> pos(tokens);
    for (int64_t t = 0; t < tokens; ++t) pos[t] = static_cast<int32_t>(t * 613 + 1);
    std::vector<float> inv(head_dim / 2);
    for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / head_dim);
    std::vector<float> want = x;
    ASSERT_TRUE(strata::LaunchRope({want.data(), tokens, heads, head_dim, 0, pos.data(),
                                    inv.data(), neox}).ok());
    DeviceBuffer<float> dx(x), dinv(inv);
    DeviceBuffer<int32_t> dpos(pos);
    ASSERT_EQ(LaunchRope({dx.ptr, tokens, heads, head_dim, 0, dpos.ptr, dinv.ptr, neox}, nullptr),
              cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ExpectClose(dx.Read(), want, 1e-5f, 1e-5f);
  }
}

TEST(CudaDevice, SwiGluMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 7 * 1537;
  const auto g = RandomNonZero(n, 5), u = RandomNonZero(n, 6);
  std::vector<float> want(n);
  ASSERT_TRUE(strata::LaunchSwiGlu({g.data(), u.data(), want.data(), n}).ok());
  DeviceBuffer<float> dg(g), du(u),
      dout(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
  ASSERT_EQ(LaunchSwiGlu({dg.ptr, du.ptr, dout.ptr, n}, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(dout.Read(), want, 1e-5f, 1e-6f);
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// As in host_parity_test.cc: `rows` random rows of `dim` elements in `dt`,
// `row_stride` bytes apart from `offset`; finite non-zero values (f16 scales in
// [1e-3, 0.1], some f16-subnormal), 0xFF padding.
std::vector<uint8_t> RandomTable(EmbeddingDtype dt, int64_t rows, int64_t dim, int64_t row_stride,
                                 int64_t offset, uint32_t seed) {
  std::vector<uint8_t> buf(offset + rows * row_stride, 0xFF);
  std::mt19937 rng(seed);
  const auto vals = RandomNonZero(rows * dim, seed + 1);
  const bool k = dt == EmbeddingDtype::kQ4_K || dt == EmbeddingDtype::kQ5_K ||
                 dt == EmbeddingDtype::kQ6_K;
  const int64_t bv = k ? 256 : 32, bb = EmbeddingRowBytes(dt, bv);
  const int64_t d_at = dt == EmbeddingDtype::kQ6_K ? 208 : 0;
  const int n_scales = dt == EmbeddingDtype::kQ4_1 || dt == EmbeddingDtype::kQ4_K ||
                               dt == EmbeddingDtype::kQ5_K ? 2 : 1;
  std::uniform_real_distribution<float> scale(1e-3f, 0.1f);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = buf.data() + offset + r * row_stride;
    const float* v = vals.data() + r * dim;
    if (dt == EmbeddingDtype::kF32) {
      std::memcpy(row, v, dim * sizeof(float));
    } else if (dt == EmbeddingDtype::kF16 || dt == EmbeddingDtype::kBF16) {
      for (int64_t i = 0; i < dim; ++i) {
        const uint16_t h = dt == EmbeddingDtype::kF16 ? F32ToF16(v[i])
                                                      : static_cast<uint16_t>(Bits(v[i]) >> 16);
        std::memcpy(row + 2 * i, &h, 2);
      }
    } else {
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
  return buf;
}

// CpuBackend::EmbeddingLookup on the host copy: [tokens, dim].
std::vector<float> ReferenceEmbedding(const std::vector<uint8_t>& table, int64_t offset,
                                      const EmbeddingParams& p, const std::vector<int32_t>& ids) {
  std::vector<float> want(p.tokens * p.dim, 0.0f);
  for (int64_t t = 0; t < p.tokens; ++t) {
    if (ids[t] < p.vocab_begin || ids[t] >= p.vocab_end) continue;
    const uint8_t* row = table.data() + offset + (ids[t] - p.vocab_begin) * p.row_stride;
    float* out = want.data() + t * p.dim;
    EXPECT_TRUE(DequantizeRow(static_cast<TensorType>(p.dtype), row, out, p.dim).ok());
  }
  return want;
}

// Bit for bit on the first dim floats of each row, the NaN poison after.
void ExpectRowsBitExact(const std::vector<float>& out, int64_t out_stride,
                        const std::vector<float>& want, int64_t dim, const std::string& what) {
  int bad = 0;
  for (size_t t = 0; t < want.size() / dim; ++t) {
    for (int64_t d = 0; d < out_stride; ++d) {
      const uint32_t got = Bits(out[t * out_stride + d]);
      if (got != (d < dim ? Bits(want[t * dim + d]) : Bits(kNaN)) && ++bad <= 5) {
        ADD_FAILURE() << what << " row " << t << " [" << d << "] = " << out[t * out_stride + d]
                      << (d < dim ? ", want " : ", past the row: want untouched ")
                      << (d < dim ? want[t * dim + d] : kNaN);
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CudaDevice, EmbeddingMatchesDequantizeRowEveryDtype) {
  SKIP_WITHOUT_GPU();
  const int64_t vocab_begin = 40, vocab_end = 63, vocab_total = 200;
  const std::vector<int32_t> ids = {40, 62, 41, 50, 50, 39, 63, 0, -1, 199, 200, 1000, -7, 55};
  const int64_t tokens = static_cast<int64_t>(ids.size());
  DeviceBuffer<int32_t> dids(ids);
  for (EmbeddingDtype dt : {EmbeddingDtype::kF32, EmbeddingDtype::kF16, EmbeddingDtype::kBF16,
                            EmbeddingDtype::kQ8_0, EmbeddingDtype::kQ4_0, EmbeddingDtype::kQ4_1,
                            EmbeddingDtype::kQ4_K, EmbeddingDtype::kQ5_K, EmbeddingDtype::kQ6_K}) {
    const int64_t esize = dt == EmbeddingDtype::kF32 ? 4 : 2;
    std::vector<int64_t> dims = {7, 1001, 4096};  // F32, F16, BF16
    if (EmbeddingRowBytes(dt, 7) == 0) dims = {EmbeddingRowBytes(dt, 96) ? 96 : 256, 4096};
    for (int64_t dim : dims) {
      const int64_t row_bytes = EmbeddingRowBytes(dt, dim);
      for (bool aligned : {true, false}) {
        const int64_t row_stride = aligned ? (row_bytes + 15) / 16 * 16 : row_bytes + esize;
        const int64_t offset = aligned ? 0 : esize;
        const int64_t out_stride = aligned ? (dim + 3) / 4 * 4 : dim + 1;
        const auto table = RandomTable(dt, vocab_end - vocab_begin, dim, row_stride, offset,
                                       static_cast<uint32_t>(dim + static_cast<int>(dt)));
        DeviceBuffer<uint8_t> dtable(table);
        DeviceBuffer<float> dout(std::vector<float>(tokens * out_stride, kNaN));
        DeviceBuffer<int> dbad(std::vector<int>(1, 0));
        const EmbeddingParams p{.table = dtable.ptr + offset, .dtype = dt, .row_stride = row_stride,
                                .ids = dids.ptr, .out = dout.ptr, .tokens = tokens, .dim = dim,
                                .vocab_begin = vocab_begin, .vocab_end = vocab_end,
                                .out_stride = out_stride, .bad_ids = dbad.ptr,
                                .vocab_total = vocab_total};
        const std::string what = "dtype " + std::to_string(static_cast<int>(dt)) + " dim " +
                                 std::to_string(dim) + (aligned ? " aligned" : " unaligned");
        ASSERT_EQ(LaunchEmbedding(p, nullptr), cudaSuccess) << what;
        ExpectRowsBitExact(dout.Read(), out_stride, ReferenceEmbedding(table, offset, p, ids), dim,
                           what);
        EXPECT_EQ(dbad.Read()[0], 4) << what;  // -1, -7, 200, 1000
      }
    }
  }
}

TEST(CudaDevice, EmbeddingDecodesEveryF16AndBf16Code) {
  SKIP_WITHOUT_GPU();
  std::vector<uint8_t> table(65536 * 2);
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    std::memcpy(table.data() + 2 * i, &h, 2);
  }
  std::vector<int32_t> ids(256);
  for (int i = 0; i < 256; ++i) ids[i] = 255 - i;
  DeviceBuffer<uint8_t> dtable(table);
  DeviceBuffer<int32_t> dids(ids);
  for (EmbeddingDtype dt : {EmbeddingDtype::kF16, EmbeddingDtype::kBF16}) {
    for (int64_t out_stride : {256, 257}) {
      DeviceBuffer<float> dout(std::vector<float>(256 * out_stride, kNaN));
      const EmbeddingParams p{.table = dtable.ptr, .dtype = dt, .row_stride = 512, .ids = dids.ptr,
                              .out = dout.ptr, .tokens = 256, .dim = 256, .vocab_begin = 0,
                              .vocab_end = 256, .out_stride = out_stride};
      ASSERT_EQ(LaunchEmbedding(p, nullptr), cudaSuccess);
      ExpectRowsBitExact(dout.Read(), out_stride, ReferenceEmbedding(table, 0, p, ids), 256,
                         dt == EmbeddingDtype::kF16 ? "every f16" : "every bf16");
    }
  }
}

TEST(CudaDevice, ResidualAddMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{(1 << 22) + 3}}) {
    const auto x0 = RandomNonZero(n + 1, 8 + n), y = RandomNonZero(n + 1, 9 + n);
    for (auto [ox, oy] : {std::pair{0, 0}, std::pair{1, 0}, std::pair{0, 1}}) {
      std::vector<float> want = x0;
      for (int64_t i = 0; i < n; ++i) want[ox + i] = x0[ox + i] + y[oy + i];
      DeviceBuffer<float> dx(x0), dy(y);
      ASSERT_EQ(LaunchResidualAdd({dx.ptr + ox, dy.ptr + oy, n}, nullptr), cudaSuccess);
      ExpectRowsBitExact(dx.Read(), n + 1, want, n + 1, "residual add n " + std::to_string(n));
    }
  }
}

TEST(CudaDevice, BiasAddMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{7, 33}, {4099, 1024}, {1025, 1023}, {3, 1}}) {
    for (int64_t stride : {int64_t{0}, cols + 4}) {
      const int64_t s = stride ? stride : cols;
      const auto bias = RandomNonZero(cols, 10 + cols);
      const auto x0 = RandomNonZero(rows * s, 11 + rows);
      std::vector<float> want = x0;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < cols; ++i) want[r * s + i] += bias[i];
      }
      DeviceBuffer<float> dx(x0), db(bias);
      ASSERT_EQ(LaunchBiasAdd({dx.ptr, db.ptr, rows, cols, stride}, nullptr), cudaSuccess);
      ExpectRowsBitExact(dx.Read(), want.size(), want, want.size(),
                         "bias add " + std::to_string(rows) + "x" + std::to_string(cols));
    }
  }
}

TEST(CudaDevice, GatherRowsMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t src_rows = 37;
  const std::vector<int32_t> rows = {3, 0, 36, 3, -1, 37, 12, 1000, 36, 20};  // 3 bad
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  DeviceBuffer<int32_t> drows(rows);
  for (int64_t cols : {7, 1000, 4096}) {
    for (auto [ss, ds] : {std::pair<int64_t, int64_t>{0, 0}, {cols + 1, cols + 3}}) {
      const int64_t src_stride = ss ? ss : cols, dst_stride = ds ? ds : cols;
      const auto src = RandomNonZero(src_rows * src_stride, 12 + cols);
      std::vector<float> want(n_rows * cols, 0.0f);
      for (int64_t r = 0; r < n_rows; ++r) {
        if (rows[r] < 0 || rows[r] >= src_rows) continue;
        std::memcpy(want.data() + r * cols, src.data() + rows[r] * src_stride, cols * sizeof(float));
      }
      DeviceBuffer<float> dsrc(src), ddst(std::vector<float>(n_rows * dst_stride, kNaN));
      DeviceBuffer<int> dbad(std::vector<int>(1, 0));
      ASSERT_EQ(LaunchGatherRows({dsrc.ptr, drows.ptr, ddst.ptr, n_rows, cols, src_rows, ss, ds,
                                  dbad.ptr}, nullptr),
                cudaSuccess);
      ExpectRowsBitExact(ddst.Read(), dst_stride, want, cols, "gather cols " + std::to_string(cols));
      EXPECT_EQ(dbad.Read()[0], 3);
    }
  }
}

TEST(CudaDevice, BadParamsAreInvalidValue) {
  // Validation happens before any CUDA call, so this runs without a GPU too.
  EXPECT_EQ(LaunchSwiGlu({nullptr, nullptr, nullptr, 4}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchRope({nullptr, 1, 1, 3, 0, nullptr, nullptr, false}, nullptr),
            cudaErrorInvalidValue);
  float f = 0.0f;
  int32_t id = 0;
  EXPECT_EQ(LaunchEmbedding({.table = nullptr, .ids = &id, .out = &f, .tokens = 1, .dim = 1,
                             .vocab_end = 1}, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(LaunchEmbedding({.table = &f, .dtype = EmbeddingDtype::kQ8_0, .ids = &id, .out = &f,
                             .tokens = 1, .dim = 1, .vocab_end = 1}, nullptr),
            cudaErrorInvalidValue);  // dim not a multiple of 32
  EXPECT_EQ(LaunchResidualAdd({nullptr, &f, 1}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchResidualAdd({&f, &f, -1}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchBiasAdd({&f, nullptr, 1, 1}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchBiasAdd({&f, &f, 1, -1}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchGatherRows({&f, nullptr, &f, 1, 1, 1}, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(LaunchGatherRows({&f, &id, &f, -1, 1, 1}, nullptr), cudaErrorInvalidValue);
  // Empty work: success without a launch (host pointers are never touched).
  EXPECT_EQ(LaunchEmbedding({.table = &f, .ids = &id, .out = &f, .tokens = 0, .dim = 1,
                             .vocab_end = 1}, nullptr),
            cudaSuccess);
  EXPECT_EQ(LaunchResidualAdd({&f, &f, 0}, nullptr), cudaSuccess);
  EXPECT_EQ(LaunchBiasAdd({&f, &f, 0, 4}, nullptr), cudaSuccess);
  EXPECT_EQ(LaunchGatherRows({&f, &id, &f, 0, 4, 1}, nullptr), cudaSuccess);
  const absl::Status st = CudaStatus(cudaErrorInvalidValue, "Rope");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("Rope"), std::string::npos) << st;
  EXPECT_TRUE(CudaStatus(cudaSuccess, "Rope").ok());
}

}  // namespace
}  // namespace strata::cuda
