#include "common/tensor_type.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace strata {

namespace {
struct TypeTraits {
  TensorType type;
  absl::string_view name;
  int64_t block_size;
  int64_t block_bytes;
};

// Block layouts as in GGML (ggml-common.h):
//   Q4_0: f16 d + 16 B nibbles                      = 18 B / 32
//   Q4_1: f16 d, f16 m + 16 B nibbles               = 20 B / 32
//   Q5_0: f16 d + 4 B high bits + 16 B nibbles       = 22 B / 32
//   Q5_1: f16 d, f16 m + 4 B high bits + 16 B        = 24 B / 32
//   Q8_0: f16 d + 32 B int8                          = 34 B / 32
//   Q8_1: f16 d, f16 s + 32 B int8                   = 36 B / 32
//   Q2_K: 16 B scales + 64 B qs + f16 d, dmin        = 84 B / 256
//   Q3_K: 32 B hmask + 64 B qs + 12 B scales + f16 d = 110 B / 256
//   Q4_K: f16 d, dmin + 12 B scales + 128 B qs       = 144 B / 256
//   Q5_K: f16 d, dmin + 12 B scales + 32 B qh + 128  = 176 B / 256
//   Q6_K: 128 B ql + 64 B qh + 16 B scales + f16 d   = 210 B / 256
//   Q8_K: f32 d + 256 B int8 + 16 x i16 bsums        = 292 B / 256
constexpr TypeTraits kTraits[] = {
    {TensorType::kF32, "F32", 1, 4},       {TensorType::kF16, "F16", 1, 2},
    {TensorType::kQ4_0, "Q4_0", 32, 18},   {TensorType::kQ4_1, "Q4_1", 32, 20},
    {TensorType::kQ5_0, "Q5_0", 32, 22},   {TensorType::kQ5_1, "Q5_1", 32, 24},
    {TensorType::kQ8_0, "Q8_0", 32, 34},   {TensorType::kQ8_1, "Q8_1", 32, 36},
    {TensorType::kQ2_K, "Q2_K", 256, 84},  {TensorType::kQ3_K, "Q3_K", 256, 110},
    {TensorType::kQ4_K, "Q4_K", 256, 144}, {TensorType::kQ5_K, "Q5_K", 256, 176},
    {TensorType::kQ6_K, "Q6_K", 256, 210}, {TensorType::kQ8_K, "Q8_K", 256, 292},
    {TensorType::kBF16, "BF16", 1, 2},     {TensorType::kF8E4M3, "F8_E4M3", 1, 1},
};

const TypeTraits* Find(TensorType type) {
  for (const auto& t : kTraits) {
    if (t.type == type) return &t;
  }
  return nullptr;
}
}  // namespace

absl::string_view TensorTypeName(TensorType type) {
  const TypeTraits* t = Find(type);
  return t ? t->name : "UNKNOWN";
}

std::optional<TensorType> TensorTypeFromGgml(uint32_t id) {
  if (id == static_cast<uint32_t>(TensorType::kF8E4M3)) return std::nullopt;  // not a GGML id
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == id) return t.type;
  }
  return std::nullopt;
}

int64_t BlockSize(TensorType type) {
  const TypeTraits* t = Find(type);
  return t ? t->block_size : 0;
}

int64_t BlockBytes(TensorType type) {
  const TypeTraits* t = Find(type);
  return t ? t->block_bytes : 0;
}

absl::StatusOr<int64_t> RowBytes(TensorType type, int64_t n) {
  const TypeTraits* t = Find(type);
  if (t == nullptr) return absl::InvalidArgumentError("unknown tensor type");
  if (n < 0 || n % t->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("row of ", n, " elements is not a multiple of the ",
                                                   t->name, " block size ", t->block_size));
  }
  const int64_t blocks = n / t->block_size;
  if (blocks > std::numeric_limits<int64_t>::max() / t->block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("row of ", n, " elements overflows"));
  }
  return blocks * t->block_bytes;
}

bool IsSupportedWeightType(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ8_0:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return true;
    default:
      return false;
  }
}

}  // namespace strata
