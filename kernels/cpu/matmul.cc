// Matmul driver: validates the parameters, picks the row kernel for the SIMD
// level, quantizes the input once per call and splits the rows over the pool.
//
// Loop order (both decode and prefill): each thread walks its contiguous range
// of weight rows once; for every row the kernel runs over all tokens while the
// row sits in L1 (the quantized input, tokens x cols bytes, stays in L2). So
// every weight byte is read from memory exactly once per call, which is what
// decode (tokens == 1, memory-bound) needs, and prefill reuses each row
// `tokens` times.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/quantize_activations.h"

namespace strata {
namespace {

enum class ActFormat { kF32, kQ8Act32, kQ8Act32Nib, kQ8ActK };

ActFormat ActFormatFor(TensorType type) {
  switch (type) {
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ8_0:
      return ActFormat::kQ8Act32;
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return ActFormat::kQ8ActK;
    default:
      return ActFormat::kF32;
  }
}

// Checked and defaulted copy of the parameters.
struct Resolved {
  int64_t weight_row_stride;
  int64_t output_stride;
};

absl::StatusOr<Resolved> Validate(const MatMulParams& p) {
  if (!IsSupportedWeightType(p.weight_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMul: unsupported weight type ", TensorTypeName(p.weight_type)));
  }
  if (p.rows < 0 || p.cols < 0 || p.tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul: negative size (rows ", p.rows, ", cols ",
                                                   p.cols, ", tokens ", p.tokens, ")"));
  }
  absl::StatusOr<int64_t> row_bytes = RowBytes(p.weight_type, p.cols);
  if (!row_bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul: cols: ", row_bytes.status().message()));
  }
  Resolved r{p.weight_row_stride == 0 ? *row_bytes : p.weight_row_stride,
             p.output_stride == 0 ? p.rows : p.output_stride};
  if (r.weight_row_stride < *row_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul: weight_row_stride ", p.weight_row_stride,
                                                   " < row bytes ", *row_bytes));
  }
  if (r.output_stride < p.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMul: output_stride ", p.output_stride, " < rows ", p.rows));
  }
  int64_t unused, elems;
  if (__builtin_mul_overflow(p.rows, r.weight_row_stride, &unused) ||
      __builtin_mul_overflow(p.tokens, r.output_stride, &unused) ||
      __builtin_mul_overflow(p.tokens, p.cols, &elems) ||
      __builtin_mul_overflow(elems, int64_t{8}, &unused)) {  // input bytes, scratch bytes < 8x
    return absl::InvalidArgumentError("MatMul: sizes overflow 64-bit byte offsets");
  }
  if (p.rows == 0 || p.tokens == 0) return r;
  if (p.output == nullptr) return absl::InvalidArgumentError("MatMul: null output");
  if (p.cols > 0 && (p.weight == nullptr || p.input == nullptr)) {
    return absl::InvalidArgumentError("MatMul: null weight or input");
  }
  const int64_t align = p.weight_type == TensorType::kF32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(p.weight) % align != 0 || r.weight_row_stride % align != 0) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul: weight pointer and weight_row_stride must be ",
                                                   align, "-byte aligned for ",
                                                   TensorTypeName(p.weight_type)));
  }
  return r;
}

MatMulKernel FindKernel(SimdLevel level, TensorType type) {
  MatMulKernel k = nullptr;
  if (level == SimdLevel::kAvx512) k = Avx512Kernel(type);
  if (k == nullptr && level >= SimdLevel::kAvx2) k = Avx2Kernel(type);
  if (k == nullptr) k = ScalarKernel(type);
  return k;
}

// Below this much work (weight bytes x tokens) a call runs on the calling
// thread alone. With the spinning ThreadPool a ParallelFor costs ~0.2 us, but
// splitting a matrix that a core streams in under ~15 us still lost to one
// thread here; 256 KiB was best of 64 KiB / 256 KiB / 1 MiB for whole-model
// decode in interleaved runs (SmolLM2-135M Q4_1: q/o/k/v stay on one thread,
// gate/up/down, the LM head and all prefill use the pool).
constexpr int64_t kMinParallelBytes = int64_t{256} << 10;

// Per calling thread; 64-byte aligned view into a growing byte vector.
uint8_t* Scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < bytes + 64) buffer.resize(bytes + 64);
  const uintptr_t p = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + ((64 - p % 64) % 64);
}

void Parallel(ThreadPool* pool, int64_t n, int64_t grain,
              const std::function<void(int64_t, int64_t, int)>& fn) {
  if (pool == nullptr) {
    if (n > 0) fn(0, n, 0);
  } else {
    pool->ParallelFor(n, grain, fn);
  }
}

}  // namespace

absl::Status LaunchMatMulWithLevel(const MatMulParams& p, SimdLevel level) {
  if (static_cast<int>(level) > static_cast<int>(HardwareSimdLevel())) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMul: this CPU does not support ", std::string(SimdLevelName(level))));
  }
  absl::StatusOr<Resolved> r = Validate(p);
  if (!r.ok()) return r.status();
  if (p.rows == 0 || p.tokens == 0) return absl::OkStatus();
  if (p.cols == 0) {
    for (int64_t t = 0; t < p.tokens; ++t) std::fill_n(p.output + t * r->output_stride, p.rows, 0.0f);
    return absl::OkStatus();
  }
  const MatMulKernel kernel = FindKernel(level, p.weight_type);

  // Activations in the format the kernel reads.
  const void* act = p.input;
  int64_t act_stride = p.cols * static_cast<int64_t>(sizeof(float));
  ActFormat format = ActFormatFor(p.weight_type);
  if (UsesNibbleActivations(level == SimdLevel::kAvx512, p.weight_type)) format = ActFormat::kQ8Act32Nib;
  if (format != ActFormat::kF32) {
    act_stride = format == ActFormat::kQ8Act32      ? Q8Act32RowBytes(p.cols)
                 : format == ActFormat::kQ8Act32Nib ? Q8Act32NibRowBytes(p.cols)
                                                    : p.cols / kQKK * static_cast<int64_t>(sizeof(BlockQ8ActK));
    uint8_t* q = Scratch(static_cast<size_t>(act_stride * p.tokens));
    act = q;
    const int64_t cols = p.cols;
    const float* in = p.input;
    const bool avx2 = level >= SimdLevel::kAvx2;
    Parallel(p.tokens >= 8 ? p.pool : nullptr, p.tokens, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const float* x = in + t * cols;
        uint8_t* y = q + t * act_stride;
        if (format == ActFormat::kQ8Act32) {
          (avx2 ? QuantizeRowQ8Act32Avx2 : QuantizeRowQ8Act32)(x, y, cols);
        } else if (format == ActFormat::kQ8Act32Nib) {
          (avx2 ? QuantizeRowQ8Act32NibAvx2 : QuantizeRowQ8Act32Nib)(x, y, cols);
        } else {
          (avx2 ? QuantizeRowQ8ActKAvx2 : QuantizeRowQ8ActK)(x, reinterpret_cast<BlockQ8ActK*>(y), cols);
        }
      }
    });
  }

  const KernelArgs args{p.cols,     static_cast<const uint8_t*>(p.weight),
                        r->weight_row_stride, act, act_stride, p.tokens, p.output, r->output_stride};
  // Rows are handed out in chunks from an atomic counter rather than split
  // statically: a thread that wakes late or shares its core with another
  // process just takes fewer chunks, and the calling thread starts at once.
  // Chunks are multiples of 16 rows (one 64-byte line of outputs), about 8
  // per thread so the tail imbalance stays small.
  const int threads = p.pool == nullptr || p.rows * *RowBytes(p.weight_type, p.cols) * p.tokens <
                                                 kMinParallelBytes
                          ? 1
                          : p.pool->num_threads();
  if (threads == 1) {
    kernel(args, 0, p.rows);
    return absl::OkStatus();
  }
  const int64_t chunk = std::max<int64_t>(16, (p.rows / (8 * threads) + 15) / 16 * 16);
  const int64_t num_chunks = (p.rows + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  p.pool->ParallelFor(threads, 1, [&](int64_t, int64_t, int) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < num_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      kernel(args, c * chunk, std::min(p.rows, (c + 1) * chunk));
    }
  });
  return absl::OkStatus();
}

absl::Status LaunchMatMul(const MatMulParams& params) {
  return LaunchMatMulWithLevel(params, DetectedSimdLevel());
}

absl::Status ReferenceMatMul(const MatMulParams& p) {
  absl::StatusOr<Resolved> r = Validate(p);
  if (!r.ok()) return r.status();
  if (p.rows == 0 || p.tokens == 0) return absl::OkStatus();
  std::vector<float> row(static_cast<size_t>(p.cols));
  const auto* w = static_cast<const uint8_t*>(p.weight);
  for (int64_t i = 0; i < p.rows; ++i) {
    absl::Status s = DequantizeRow(p.weight_type, w + i * r->weight_row_stride, row.data(), p.cols);
    if (!s.ok()) return s;
    for (int64_t t = 0; t < p.tokens; ++t) {
      const float* x = p.input + t * p.cols;
      double acc = 0.0;  // double: the reference should not add error of its own
      for (int64_t c = 0; c < p.cols; ++c) acc += static_cast<double>(row[c]) * x[c];
      p.output[t * r->output_stride + i] = static_cast<float>(acc);
    }
  }
  return absl::OkStatus();
}

}  // namespace strata
