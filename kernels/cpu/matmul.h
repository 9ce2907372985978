// Matrix multiply with weights in their stored (possibly quantized) type.
//
//   output[t, r] = sum_c input[t, c] * W[r, c]      t < tokens, r < rows, c < cols
//
// W is row-major: row r is RowBytes(weight_type, cols) bytes at
// weight + r * weight_row_stride. Quantized weights are read directly (never
// expanded in memory). Quantized types multiply against the input quantized
// to 8 bits per block (as GGML does: Q8_0-style for 32-element blocks, Q8_K
// for k-quants), so results differ from an f32 reference by the activation
// quantization error (see docs/kernels.md for per-type tolerances).
//
// The SIMD variant (AVX-512 VNNI, AVX2+FMA or scalar) is chosen at run time.
//
// Threading contract: LaunchMatMul may be called from any number of threads at
// once, but a given ThreadPool from one thread at a time (its own contract).
// The calling thread quantizes the input into a thread_local scratch buffer
// (grown to the largest tokens x cols seen, then reused: no allocation per call
// after warm-up). Calls with at least 256 KiB of work (weight bytes x tokens)
// then hand chunks of rows to params.pool's threads (the calling thread takes
// part); smaller ones run on the calling thread. Each output element is
// written by exactly one thread; output_stride padding is never written. The weight pointer and
// weight_row_stride must be 2-byte aligned (4 for F32).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/tensor_type.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/thread_pool.h"

namespace strata {

struct MatMulParams {
  TensorType weight_type = TensorType::kF32;
  const void* weight = nullptr;
  int64_t weight_row_stride = 0;  // bytes; 0 means RowBytes(weight_type, cols)
  // kF8E4M3 weights only (device backends; the CPU kernels reject that type):
  // f32 [rows] per-row scales.
  const float* weight_scales = nullptr;
  int64_t rows = 0;               // output features
  int64_t cols = 0;               // input features
  const float* input = nullptr;   // [tokens, cols], row stride `cols`
  int64_t tokens = 0;
  float* output = nullptr;        // [tokens, output_stride]
  int64_t output_stride = 0;      // >= rows; 0 means rows
  ThreadPool* pool = nullptr;     // nullptr: run on the calling thread
};

// INVALID_ARGUMENT for unsupported types, null pointers, bad sizes (cols not a
// multiple of the block size, strides too small).
absl::Status LaunchMatMul(const MatMulParams& params);

// Scalar, straightforward reference with the same semantics (dequantize each
// weight row to f32, f32 dot). Used by parity tests.
absl::Status ReferenceMatMul(const MatMulParams& params);

// LaunchMatMul with the kernels of `level` instead of DetectedSimdLevel()
// (tests and benchmarks). INVALID_ARGUMENT when this CPU lacks `level`.
absl::Status LaunchMatMulWithLevel(const MatMulParams& params, SimdLevel level);

// Several matmuls on the same input (same input pointer, tokens, cols, weight
// type and pool), e.g. Q, K and V, or gate and up: the input is quantized
// once and all rows share one parallel pass (one ParallelFor instead of one
// per matrix). Calls that do not share their input run one after the other.
// Each output is bit-identical to its own LaunchMatMul.
absl::Status LaunchMatMuls(absl::Span<const MatMulParams> params);
absl::Status LaunchMatMulsWithLevel(absl::Span<const MatMulParams> params, SimdLevel level);

}  // namespace strata
