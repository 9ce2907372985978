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

namespace {

// Quantizes the input once into the format the (level, type) kernel reads;
// `*act` points at the f32 input itself for float weights.
void PrepareActivations(const MatMulParams& p, SimdLevel level, const void** act, int64_t* act_stride) {
  *act = p.input;
  *act_stride = p.cols * static_cast<int64_t>(sizeof(float));
  ActFormat format = ActFormatFor(p.weight_type);
  if (UsesNibbleActivations(level == SimdLevel::kAvx512, p.weight_type)) format = ActFormat::kQ8Act32Nib;
  if (format == ActFormat::kF32) return;
  const int64_t stride = format == ActFormat::kQ8Act32      ? Q8Act32RowBytes(p.cols)
                         : format == ActFormat::kQ8Act32Nib ? Q8Act32NibRowBytes(p.cols)
                                                            : p.cols / kQKK * static_cast<int64_t>(sizeof(BlockQ8ActK));
  uint8_t* q = Scratch(static_cast<size_t>(stride * p.tokens));
  const int64_t cols = p.cols;
  const float* in = p.input;
  const bool avx2 = level >= SimdLevel::kAvx2;
  Parallel(p.tokens >= 8 ? p.pool : nullptr, p.tokens, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const float* x = in + t * cols;
      uint8_t* y = q + t * stride;
      if (format == ActFormat::kQ8Act32) {
        (avx2 ? QuantizeRowQ8Act32Avx2 : QuantizeRowQ8Act32)(x, y, cols);
      } else if (format == ActFormat::kQ8Act32Nib) {
        (avx2 ? QuantizeRowQ8Act32NibAvx2 : QuantizeRowQ8Act32Nib)(x, y, cols);
      } else {
        (avx2 ? QuantizeRowQ8ActKAvx2 : QuantizeRowQ8ActK)(x, reinterpret_cast<BlockQ8ActK*>(y), cols);
      }
    }
  });
  *act = q;
  *act_stride = stride;
}

// One weight matrix's share of a call: its kernel arguments and row count.
struct Segment {
  KernelArgs args;
  int64_t rows;
};

// Runs every segment's rows. Rows are handed out in chunks from an atomic
// counter rather than split statically: a thread that wakes late or shares
// its core with another process just takes fewer chunks, and the calling
// thread starts at once. Chunks are multiples of 16 rows (one 64-byte line of
// outputs), about 8 per thread so the tail imbalance stays small. Several
// segments (matrices sharing one input, e.g. Q, K and V) share one pass.
void RunSegments(ThreadPool* pool, MatMulKernel kernel, const std::vector<Segment>& segs, int64_t work_bytes) {
  const int threads = pool == nullptr || work_bytes < kMinParallelBytes ? 1 : pool->num_threads();
  if (threads == 1) {
    for (const Segment& s : segs) kernel(s.args, 0, s.rows);
    return;
  }
  int64_t total_rows = 0;
  for (const Segment& s : segs) total_rows += s.rows;
  const int64_t chunk = std::max<int64_t>(16, (total_rows / (8 * threads) + 15) / 16 * 16);
  struct Chunk {
    int32_t seg;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < segs.size(); ++i) {
    for (int64_t b = 0; b < segs[i].rows; b += chunk) {
      chunks.push_back({static_cast<int32_t>(i), b, std::min(segs[i].rows, b + chunk)});
    }
  }
  const int64_t n = static_cast<int64_t>(chunks.size());
  std::atomic<int64_t> next{0};
  pool->ParallelFor(threads, 1, [&](int64_t, int64_t, int) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      kernel(segs[chunks[c].seg].args, chunks[c].begin, chunks[c].end);
    }
  });
}

bool SharesInput(const MatMulParams& a, const MatMulParams& b) {
  return a.input == b.input && a.tokens == b.tokens && a.cols == b.cols && a.weight_type == b.weight_type &&
         a.pool == b.pool;
}

}  // namespace

absl::Status LaunchMatMulsWithLevel(absl::Span<const MatMulParams> ps, SimdLevel level) {
  if (static_cast<int>(level) > static_cast<int>(HardwareSimdLevel())) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMul: this CPU does not support ", std::string(SimdLevelName(level))));
  }
  if (ps.empty()) return absl::OkStatus();
  std::vector<Resolved> resolved;
  bool shared = true, trivial = false;
  for (const MatMulParams& p : ps) {
    absl::StatusOr<Resolved> r = Validate(p);
    if (!r.ok()) return r.status();
    resolved.push_back(*r);
    shared = shared && SharesInput(p, ps[0]);
    trivial = trivial || p.rows == 0 || p.tokens == 0 || p.cols == 0;
  }
  if (ps.size() > 1 && (!shared || trivial)) {
    // Unrelated inputs or empty shapes: one call per matrix.
    for (const MatMulParams& p : ps) {
      absl::Status st = LaunchMatMulsWithLevel(absl::MakeConstSpan(&p, 1), level);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }
  if (trivial) {  // a single call with an empty shape
    const MatMulParams& p = ps[0];
    if (p.rows > 0 && p.tokens > 0) {  // cols == 0: every dot product is 0
      for (int64_t t = 0; t < p.tokens; ++t) std::fill_n(p.output + t * resolved[0].output_stride, p.rows, 0.0f);
    }
    return absl::OkStatus();
  }
  const MatMulParams& p0 = ps[0];
  const MatMulKernel kernel = FindKernel(level, p0.weight_type);
  const void* act;
  int64_t act_stride;
  PrepareActivations(p0, level, &act, &act_stride);
  std::vector<Segment> segs;
  int64_t work_bytes = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const MatMulParams& p = ps[i];
    segs.push_back({KernelArgs{p.cols, static_cast<const uint8_t*>(p.weight), resolved[i].weight_row_stride, act,
                               act_stride, p.tokens, p.output, resolved[i].output_stride},
                    p.rows});
    work_bytes += p.rows * *RowBytes(p.weight_type, p.cols) * p.tokens;
  }
  RunSegments(p0.pool, kernel, segs, work_bytes);
  return absl::OkStatus();
}

absl::Status LaunchMatMulWithLevel(const MatMulParams& p, SimdLevel level) {
  return LaunchMatMulsWithLevel(absl::MakeConstSpan(&p, 1), level);
}

absl::Status LaunchMatMuls(absl::Span<const MatMulParams> params) {
  return LaunchMatMulsWithLevel(params, DetectedSimdLevel());
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
