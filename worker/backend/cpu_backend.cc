#include "worker/backend/cpu_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/dequantize.h"

namespace strata {

std::string CpuBackend::Describe() const {
  return absl::StrCat("cpu (", pool_ ? pool_->num_threads() : 1, " threads)");
}

absl::StatusOr<DeviceMemoryInfo> CpuBackend::MemoryInfo() const {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long avail = ::sysconf(_SC_AVPHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || avail < 0 || page <= 0) return absl::InternalError("sysconf: cannot read the memory size");
  return DeviceMemoryInfo{static_cast<int64_t>(avail) * page, static_cast<int64_t>(pages) * page};
}

absl::StatusOr<DeviceBuffer> CpuBackend::Allocate(int64_t bytes) {
  if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative size ", bytes));
  // 64-byte aligned (cache lines, AVX-512 loads); rounded up as aligned_alloc requires.
  const size_t rounded = (static_cast<size_t>(bytes) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, std::max<size_t>(rounded, 64));
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cpu: cannot allocate ", bytes, " bytes"));
  }
  return DeviceBuffer(this, p, bytes);
}

void CpuBackend::Free(void* data) { std::free(data); }

absl::Status CpuBackend::CopyToDevice(void* dst, const void* host_src, int64_t bytes) {
  if (bytes > 0 && dst != host_src) std::memmove(dst, host_src, static_cast<size_t>(bytes));
  return absl::OkStatus();
}

absl::Status CpuBackend::FillZero(void* dst, int64_t bytes) {
  if (bytes > 0) std::memset(dst, 0, static_cast<size_t>(bytes));
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyToHost(void* host_dst, const void* src, int64_t bytes) {
  if (bytes > 0 && host_dst != src) std::memmove(host_dst, src, static_cast<size_t>(bytes));
  return absl::OkStatus();
}

absl::StatusOr<BackendWeights> CpuBackend::PrepareWeights(const ModelWeights& w) {
  // Views: the CPU ops read every stored type (quantised too) in place.
  BackendWeights out;
  out.token_embd = w.token_embd;
  out.output = w.output;
  out.output_norm = w.output_norm.data();
  out.rope_inv_freq = w.rope_inv_freq.data();
  out.layers.reserve(w.layers.size());
  for (const LayerWeights& l : w.layers) {
    BackendLayerWeights b;
    b.attn_norm = l.attn_norm.data();
    b.wq = l.wq;
    b.wk = l.wk;
    b.wv = l.wv;
    b.wo = l.wo;
    b.bq = l.bq.empty() ? nullptr : l.bq.data();
    b.bk = l.bk.empty() ? nullptr : l.bk.data();
    b.bv = l.bv.empty() ? nullptr : l.bv.data();
    b.ffn_norm = l.ffn_norm.data();
    b.w_gate = l.w_gate;
    b.w_up = l.w_up;
    b.w_down = l.w_down;
    out.layers.push_back(b);
  }
  return out;
}

absl::Status CpuBackend::EmbeddingLookup(const EmbeddingLookupParams& p) {
  const int64_t d = p.table.cols;
  for (int64_t t = 0; t < p.tokens; ++t) {
    float* out = p.out + t * d;
    const int64_t id = p.ids[t];
    if (id < p.vocab_begin || id >= p.vocab_end) {
      std::fill_n(out, d, 0.0f);
      continue;
    }
    const auto* row = static_cast<const uint8_t*>(p.table.data) + (id - p.vocab_begin) * p.table.row_stride;
    RETURN_IF_ERROR(DequantizeRow(p.table.type, row, out, d));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::MatMuls(absl::Span<const MatMulParams> p) {
  absl::InlinedVector<MatMulParams, 4> q(p.begin(), p.end());
  for (MatMulParams& m : q) {
    if (m.pool == nullptr) m.pool = pool_;
  }
  if (q.size() == 1) return LaunchMatMul(q[0]);
  return LaunchMatMuls(q);
}

absl::Status CpuBackend::RmsNorm(const RmsNormParams& p) { return LaunchRmsNorm(p); }
absl::Status CpuBackend::Rope(const RopeParams& p) { return LaunchRope(p); }
absl::Status CpuBackend::SwiGlu(const SwiGluParams& p) { return LaunchSwiGlu(p); }
absl::Status CpuBackend::KvWrite(const KvWriteParams& p) { return LaunchKvWrite(p); }
absl::Status CpuBackend::Attention(const PagedAttentionParams& p) {
  PagedAttentionParams q = p;
  if (q.pool == nullptr) q.pool = pool_;
  return LaunchPagedAttention(q);
}

absl::Status CpuBackend::AddBias(float* x, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) x[r * cols + i] += bias[i];
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  return absl::OkStatus();
}

absl::Status CpuBackend::StridedCopy(const StridedCopyParams& p) {
  for (int64_t r = 0; r < p.rows; ++r) std::copy_n(p.src + r * p.src_stride, p.cols, p.dst + r * p.dst_stride);
  return absl::OkStatus();
}

absl::Status CpuBackend::GatherRows(const float* src, absl::Span<const int32_t> rows, int64_t cols, float* dst) {
  for (size_t r = 0; r < rows.size(); ++r) std::copy_n(src + static_cast<int64_t>(rows[r]) * cols, cols, dst + r * cols);
  return absl::OkStatus();
}

}  // namespace strata
