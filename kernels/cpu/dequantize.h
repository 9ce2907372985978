// Dequantization of rows of any supported tensor type to f32. Used for the
// embedding lookup (one row per token) and as the CPU reference.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "common/tensor_type.h"

namespace strata {

// dst[0..n) = row of `n` elements stored at `src` in `type`. INVALID_ARGUMENT
// when the type is unsupported or n is not a multiple of its block size.
absl::Status DequantizeRow(TensorType type, const void* src, float* dst, int64_t n);

}  // namespace strata
