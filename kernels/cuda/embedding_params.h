// Parameters of the embedding lookup, strata::EmbeddingLookupParams
// (worker/backend/backend.h) on the device. The table is this rank's shard of the
// vocabulary under tensor parallelism: rows for ids [vocab_begin, vocab_end).
//
//   out[t, :] = dequantize(table row ids[t] - vocab_begin)   vocab_begin <= ids[t] < vocab_end
//   out[t, :] = 0                                             otherwise (another rank's row;
//                                                             the all-reduce adds it)
//
// exactly as CpuBackend::EmbeddingLookup does with DequantizeRow
// (kernels/cpu/dequantize.h): bit for bit, every dtype (no FMA contraction; F16
// scales and elements decode exactly, NaN payloads included for F16/BF16 rows). These
// are the types DequantizeRow (and so CpuBackend) reads: IsSupportedWeightType.
//
// Table rows, row_stride bytes apart (GGUF layouts, kernels/cpu/quant_blocks.h):
//
//   F32  dim floats            F16/BF16  dim halves
//   Q8_0/Q4_0/Q4_1  dim/32 blocks of 34/18/20 bytes (dim a multiple of 32)
//   Q4_K/Q5_K/Q6_K  dim/256 blocks of 144/176/210 bytes (dim a multiple of 256)
//
//   table ─► +----------- row (id = vocab_begin) ----------+ pad +
//            +----------- row (id = vocab_begin + 1) ------+ pad +   ... row_stride bytes each
//
// Token ids live in device memory, so the kernel cannot return a status per id: a
// negative id (and, when vocab_total > 0, an id >= vocab_total) gets a zero row and
// adds 1 to *bad_ids (when not null). Callers validate ids on the host (the
// coordinator checks them against the vocabulary) and treat *bad_ids != 0 as an
// internal error. Only the first dim floats of each out row are written.
#pragma once

#include <cstdint>

#include "kernels/cuda/gemm/weight_quant.h"

// Callable from kernels too (nvcc); plain inline for the host compiler.
#ifdef __CUDACC__
#define STRATA_EMBEDDING_HD __host__ __device__
#else
#define STRATA_EMBEDDING_HD
#endif

namespace strata::cuda {

// Table row types. The values are GGML's type ids, those of strata::TensorType
// (common/tensor_type.h), so a TensorType converts with a static_cast once it is
// known to be one of these (CheckEmbedding rejects any other value).
enum class EmbeddingDtype : int32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

struct EmbeddingParams {
  const void* table = nullptr;  // [vocab_end - vocab_begin rows, row_stride bytes]
  EmbeddingDtype dtype = EmbeddingDtype::kF32;
  int64_t row_stride = 0;        // bytes between table rows; 0 means packed (one row's bytes)
  const int32_t* ids = nullptr;  // [tokens]
  float* out = nullptr;          // [tokens, out_stride] (dim floats used)
  int64_t tokens = 0;
  int64_t dim = 0;               // elements per row
  int64_t vocab_begin = 0;       // first id of this rank's shard
  int64_t vocab_end = 0;         // one past the last id of the shard
  int64_t out_stride = 0;        // floats; 0 means dim
  int* bad_ids = nullptr;        // optional counter of invalid ids (see above)
  int64_t vocab_total = 0;       // whole vocabulary (all ranks); 0: unknown, only ids < 0 are bad
};

// Bytes of one packed table row of `dim` elements; 0 for a dtype outside the enum or a
// quantised dim that is not a whole number of blocks (32 values, 256 for k-quants).
STRATA_EMBEDDING_HD constexpr int64_t EmbeddingRowBytes(EmbeddingDtype dtype, int64_t dim) {
  switch (dtype) {
    case EmbeddingDtype::kF32:
      return 4 * dim;
    case EmbeddingDtype::kF16:
    case EmbeddingDtype::kBF16:
      return 2 * dim;
    case EmbeddingDtype::kQ8_0:
    case EmbeddingDtype::kQ4_0:
    case EmbeddingDtype::kQ4_1:
      if (dim % kWeightQuantBlock != 0) return 0;
      return dim / kWeightQuantBlock *
             WeightQuantBlockBytes(static_cast<WeightQuant>(static_cast<int32_t>(dtype)));
    case EmbeddingDtype::kQ4_K:
    case EmbeddingDtype::kQ5_K:
    case EmbeddingDtype::kQ6_K:
      if (dim % 256 != 0) return 0;
      return dim / 256 *
             (dtype == EmbeddingDtype::kQ4_K ? 144 : dtype == EmbeddingDtype::kQ5_K ? 176 : 210);
  }
  return 0;
}

}  // namespace strata::cuda
