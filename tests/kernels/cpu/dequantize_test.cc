// DequantizeRow against an independent implementation: the gguf Python
// package (gguf.quants.dequantize), run by gen_dequant_reference.py on random
// valid blocks. Results must be bit-identical: both sides do the same IEEE f32
// operations in the same order (see dequantize.cc), no FMA contraction.
#include "kernels/cpu/dequantize.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/float16.h"

namespace strata {
namespace {

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

class DequantizeVsGguf : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(STRATA_PYTHON, X_OK) != 0) return;
    char tmpl[] = "/tmp/strata_dequant_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    const std::string cmd = absl::StrCat("timeout 60 ", STRATA_PYTHON, " ", STRATA_SOURCE_DIR,
                                         "/tests/kernels/cpu/gen_dequant_reference.py ", dir_);
    rc_ = std::system(cmd.c_str());
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }
  static std::string dir_;
  static int rc_;
};
std::string DequantizeVsGguf::dir_;
int DequantizeVsGguf::rc_ = -1;

TEST_F(DequantizeVsGguf, EveryTypeBitExact) {
  if (access(STRATA_PYTHON, X_OK) != 0) {
    GTEST_SKIP() << "reference Python " << STRATA_PYTHON << " not found (scripts/setup.sh makes it)";
  }
  ASSERT_EQ(rc_, 0) << "gen_dequant_reference.py failed";
  for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0,
                          TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ4_K,
                          TensorType::kQ5_K, TensorType::kQ6_K}) {
    const std::string name(TensorTypeName(type));
    SCOPED_TRACE(name);
    const std::vector<uint8_t> blocks = ReadFile(absl::StrCat(dir_, "/", name, ".bin"));
    const std::vector<uint8_t> want_bytes = ReadFile(absl::StrCat(dir_, "/", name, ".f32"));
    ASSERT_FALSE(blocks.empty());
    ASSERT_EQ(blocks.size() % BlockBytes(type), 0u);
    const int64_t n = static_cast<int64_t>(blocks.size()) / BlockBytes(type) * BlockSize(type);
    ASSERT_EQ(want_bytes.size(), static_cast<size_t>(n) * 4);
    std::vector<float> got(n);
    ASSERT_TRUE(DequantizeRow(type, blocks.data(), got.data(), n).ok());
    int mismatches = 0;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t want_bits;
      std::memcpy(&want_bits, want_bytes.data() + 4 * i, 4);
      if (BitsFromF32(got[i]) != want_bits && ++mismatches <= 5) {
        ADD_FAILURE() << name << " element " << i << ": got " << got[i] << " want "
                      << F32FromBits(want_bits);
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(DequantizeRow, RejectsBadArguments) {
  float out[64];
  uint8_t in[64 * 4] = {};
  EXPECT_EQ(DequantizeRow(TensorType::kQ4_1, in, out, 33).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(TensorType::kQ5_0, in, out, 32).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(TensorType::kQ8_0, nullptr, out, 32).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DequantizeRow(TensorType::kQ8_0, in, out, 0).ok());
}

TEST(Float16, RoundTripsEveryFiniteHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 0x1F) == 0x1F) continue;
    const float f = F16ToF32(static_cast<uint16_t>(h));
    ASSERT_EQ(F32ToF16(f), h) << "half bits " << h;
  }
}

}  // namespace
}  // namespace strata
