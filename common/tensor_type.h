// Element types of model tensors. The numeric values are GGML's (the GGUF
// on-disk ids), so a GGUF tensor's type field converts with a range check.
//
// Block-quantized types store a row as consecutive blocks of `BlockSize()`
// elements, each `BlockBytes()` bytes; a row's length must be a multiple of
// the block size. Plain types have block size 1.
#pragma once

#include <cstdint>
#include <optional>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace strata {

enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
  // Strata's own id (no GGML type, never read from a file): FP8 E4M3 codes, one
  // byte per element, with one f32 scale per row kept beside the matrix
  // (WeightMatrix::row_scales). Made by CudaBackend for FP8 weights.
  kF8E4M3 = 1000,
};

// Name as GGML prints it ("Q4_1", "BF16", ...). absl::string_view because
// Debian's abseil is built with its own string_view, which StrCat takes.
absl::string_view TensorTypeName(TensorType type);

// Converts a raw GGML type id; nullopt for ids Strata does not know.
std::optional<TensorType> TensorTypeFromGgml(uint32_t id);

// Elements per block (1 for F32/F16/BF16, 32 for Q4_0.., 256 for k-quants).
int64_t BlockSize(TensorType type);
// Bytes per block.
int64_t BlockBytes(TensorType type);

// Bytes of a row of `n` elements; error when n is not a multiple of the block
// size (or negative / overflowing).
absl::StatusOr<int64_t> RowBytes(TensorType type, int64_t n);

// True for the types the CPU matmul kernels read directly.
bool IsSupportedWeightType(TensorType type);

}  // namespace strata
