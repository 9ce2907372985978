#include "worker/backend/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/attention/launchers.h"
#include "kernels/cuda/launchers.h"

namespace strata {

namespace {

absl::Status Cuda(cudaError_t err, const char* what) { return cuda::CudaStatus(err, what); }

absl::Status NotOnDeviceYet(const char* op, absl::string_view detail = "") {
  return absl::UnimplementedError(absl::StrCat("CudaBackend::", op, detail.empty() ? "" : " ", detail,
                                               ": no device kernel wired in yet (docs/kernels.md, "
                                               "\"CUDA backend status\")"));
}

}  // namespace

absl::StatusOr<CudaDeviceInfo> CudaBackend::CheckDevice(int index) {
  const std::string dev = absl::StrCat("cuda:", index);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return absl::FailedPreconditionError(
        absl::StrCat(dev, ": no CUDA device is visible (cudaGetDeviceCount: ", cudaGetErrorString(err), ")"));
  }
  if (count == 0) return absl::FailedPreconditionError(absl::StrCat(dev, ": no CUDA device is visible"));
  if (index < 0 || index >= count) {
    return absl::FailedPreconditionError(absl::StrCat(dev, ": only ", count, " CUDA device",
                                                      count == 1 ? " is" : "s are", " visible (0..", count - 1,
                                                      "; CUDA_VISIBLE_DEVICES filters them)"));
  }
  cudaDeviceProp prop{};
  RETURN_IF_ERROR(Cuda(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties"));
  CudaDeviceInfo info;
  info.index = index;
  info.device_count = count;
  info.name = prop.name;
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.total_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  if (prop.major < 8) {
    return absl::FailedPreconditionError(absl::StrCat(dev, " (", info.name, ", sm_", prop.major, prop.minor,
                                                      "): the CUDA backend needs sm_80 or newer"));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const CudaBackendConfig& config) {
  ASSIGN_OR_RETURN(CudaDeviceInfo info, CheckDevice(config.device));
  auto b = std::unique_ptr<CudaBackend>(new CudaBackend());
  b->info_ = info;
  RETURN_IF_ERROR(Cuda(cudaSetDevice(config.device), "cudaSetDevice"));
  RETURN_IF_ERROR(Cuda(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  return b;
}

CudaBackend::~CudaBackend() {
  if (stream_ != nullptr) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

std::string CudaBackend::Describe() const {
  return absl::StrFormat("cuda:%d %s, sm_%d%d, %.1f GiB", info_.index, info_.name, info_.sm_major, info_.sm_minor,
                         static_cast<double>(info_.total_bytes) / (1 << 30));
}

absl::StatusOr<DeviceMemoryInfo> CudaBackend::MemoryInfo() const {
  size_t free_bytes = 0, total_bytes = 0;
  RETURN_IF_ERROR(Cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo"));
  return DeviceMemoryInfo{static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes)};
}

absl::StatusOr<DeviceBuffer> CudaBackend::Allocate(int64_t bytes) {
  if (bytes < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative size ", bytes));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, static_cast<size_t>(bytes > 0 ? bytes : 1));
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    return absl::ResourceExhaustedError(absl::StrCat(device().ToString(), ": cannot allocate ", bytes,
                                                     " bytes (", free_bytes, " of ", total_bytes, " free)"));
  }
  RETURN_IF_ERROR(Cuda(err, "cudaMalloc"));
  return DeviceBuffer(this, p, bytes);
}

void CudaBackend::Free(void* data) { cudaFree(data); }

absl::Status CudaBackend::CopyToDevice(void* dst, const void* host_src, int64_t bytes) {
  if (bytes <= 0) return absl::OkStatus();
  // From pageable memory cudaMemcpyAsync stages the bytes before it returns,
  // so the caller may reuse host_src at once.
  return Cuda(cudaMemcpyAsync(dst, host_src, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync (to device)");
}

absl::Status CudaBackend::FillZero(void* dst, int64_t bytes) {
  if (bytes <= 0) return absl::OkStatus();
  return Cuda(cudaMemsetAsync(dst, 0, static_cast<size_t>(bytes), stream_), "cudaMemsetAsync");
}

absl::Status CudaBackend::CopyToHost(void* host_dst, const void* src, int64_t bytes) {
  if (bytes <= 0) return Synchronize();
  RETURN_IF_ERROR(Cuda(cudaMemcpyAsync(host_dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, stream_),
                       "cudaMemcpyAsync (to host)"));
  return Synchronize();
}

absl::Status CudaBackend::Synchronize() { return Cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

absl::StatusOr<void*> CudaBackend::Upload(const void* host, int64_t bytes, BackendWeights& out) {
  ASSIGN_OR_RETURN(DeviceBuffer buf, Allocate(bytes));
  RETURN_IF_ERROR(CopyToDevice(buf.data(), host, bytes));
  void* p = buf.data();
  out.device_bytes += bytes;
  out.storage.push_back(std::move(buf));
  return p;
}

absl::StatusOr<WeightMatrix> CudaBackend::UploadMatrix(const WeightMatrix& w, BackendWeights& out) {
  WeightMatrix d = w;
  d.file_mapped = false;
  if (w.type == TensorType::kF16 || w.type == TensorType::kBF16) {
    // Dense rows: the GEMM's leading dimension is the row length.
    const int64_t row = w.cols * 2;
    std::vector<uint8_t> packed;
    const void* src = w.data;
    if (w.row_stride != row) {
      packed.resize(static_cast<size_t>(w.rows * row));
      for (int64_t r = 0; r < w.rows; ++r) {
        std::memcpy(packed.data() + r * row, static_cast<const uint8_t*>(w.data) + r * w.row_stride, row);
      }
      src = packed.data();
    }
    ASSIGN_OR_RETURN(d.data, Upload(src, w.rows * row, out));
    d.row_stride = row;
    return d;
  }
  // Everything else becomes BF16 rows (dequantised on the host, one row at a time).
  std::vector<uint16_t> bf16(static_cast<size_t>(w.rows * w.cols));
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    RETURN_IF_ERROR(DequantizeRow(w.type, static_cast<const uint8_t*>(w.data) + r * w.row_stride, row.data(), w.cols));
    for (int64_t c = 0; c < w.cols; ++c) bf16[r * w.cols + c] = F32ToBF16(row[c]);
  }
  ASSIGN_OR_RETURN(d.data, Upload(bf16.data(), static_cast<int64_t>(bf16.size() * 2), out));
  d.type = TensorType::kBF16;
  d.row_stride = w.cols * 2;
  return d;
}

absl::StatusOr<const float*> CudaBackend::UploadVector(const std::vector<float>& v, BackendWeights& out) {
  if (v.empty()) return nullptr;
  ASSIGN_OR_RETURN(void* p, Upload(v.data(), static_cast<int64_t>(v.size() * sizeof(float)), out));
  return static_cast<const float*>(p);
}

absl::StatusOr<BackendWeights> CudaBackend::PrepareWeights(const ModelWeights& w) {
  BackendWeights out;
  ASSIGN_OR_RETURN(out.token_embd, UploadMatrix(w.token_embd, out));
  if (w.output.data == w.token_embd.data) {
    out.output = out.token_embd;  // tied: one copy
  } else {
    ASSIGN_OR_RETURN(out.output, UploadMatrix(w.output, out));
  }
  ASSIGN_OR_RETURN(out.output_norm, UploadVector(w.output_norm, out));
  ASSIGN_OR_RETURN(out.rope_inv_freq, UploadVector(w.rope_inv_freq, out));
  for (const LayerWeights& l : w.layers) {
    BackendLayerWeights b;
    ASSIGN_OR_RETURN(b.attn_norm, UploadVector(l.attn_norm, out));
    ASSIGN_OR_RETURN(b.wq, UploadMatrix(l.wq, out));
    ASSIGN_OR_RETURN(b.wk, UploadMatrix(l.wk, out));
    ASSIGN_OR_RETURN(b.wv, UploadMatrix(l.wv, out));
    ASSIGN_OR_RETURN(b.wo, UploadMatrix(l.wo, out));
    ASSIGN_OR_RETURN(b.bq, UploadVector(l.bq, out));
    ASSIGN_OR_RETURN(b.bk, UploadVector(l.bk, out));
    ASSIGN_OR_RETURN(b.bv, UploadVector(l.bv, out));
    ASSIGN_OR_RETURN(b.ffn_norm, UploadVector(l.ffn_norm, out));
    ASSIGN_OR_RETURN(b.w_gate, UploadMatrix(l.w_gate, out));
    ASSIGN_OR_RETURN(b.w_up, UploadMatrix(l.w_up, out));
    ASSIGN_OR_RETURN(b.w_down, UploadMatrix(l.w_down, out));
    out.layers.push_back(b);
  }
  RETURN_IF_ERROR(Synchronize());  // the host staging buffers die here
  return out;
}

absl::Status CudaBackend::RmsNorm(const RmsNormParams& p) {
  cuda::RmsNormResidualParams c;
  c.x = p.x;
  c.residual = nullptr;
  c.weight = p.weight;
  c.out = p.out;
  c.rows = p.rows;
  c.cols = p.cols;
  c.eps = p.eps;
  return Cuda(cuda::LaunchRmsNormResidual(c, stream_), "RmsNorm");
}

absl::Status CudaBackend::Rope(const RopeParams& p) {
  cuda::RopeParams c;
  c.x = p.x;
  c.tokens = p.tokens;
  c.n_heads = p.n_heads;
  c.head_dim = p.head_dim;
  c.token_stride = p.token_stride;
  c.positions = p.positions;
  c.inv_freq = p.inv_freq;
  c.neox = p.neox;
  return Cuda(cuda::LaunchRope(c, stream_), "Rope");
}

absl::Status CudaBackend::SwiGlu(const SwiGluParams& p) {
  return Cuda(cuda::LaunchSwiGlu({p.gate, p.up, p.out, p.n}, stream_), "SwiGlu");
}

absl::Status CudaBackend::KvWrite(const KvWriteParams& p) {
  // Every KvDtype (kernels/cuda/attention/kv_write*): codes and scales bit-exact with the CPU's.
  cuda::KvWriteParams c;
  c.kv = p.kv;
  c.k = p.k;
  c.v = p.v;
  c.k_stride = p.k_stride;
  c.v_stride = p.v_stride;
  c.tokens = p.tokens;
  c.token_seq = p.token_seq;
  c.positions = p.positions;
  return Cuda(cuda::LaunchKvWrite(c, stream_), "KvWrite");
}

absl::Status CudaBackend::EmbeddingLookup(const EmbeddingLookupParams& p) {
  return NotOnDeviceYet("EmbeddingLookup", TensorTypeName(p.table.type));
}
absl::Status CudaBackend::MatMuls(absl::Span<const MatMulParams> p) {
  return NotOnDeviceYet("MatMuls", p.empty() ? "" : TensorTypeName(p[0].weight_type));
}
absl::Status CudaBackend::Attention(const PagedAttentionParams& p) {
  // The paged decode kernel serves any mix of tokens (it attends token t to
  // positions 0..positions[t] like the CPU op); the FlashAttention prefill
  // kernel (kernels/cuda/prefill) is not routed here yet.
  cuda::DecodeAttentionParams c;
  c.kv = p.kv;
  c.q = p.q;
  c.q_stride = p.q_stride;
  c.out = p.out;
  c.tokens = p.tokens;
  c.n_heads = p.n_heads;
  c.token_seq = p.token_seq;
  c.positions = p.positions;
  c.scale = p.scale;
  // Every valid position is below the block table's reach; positions are in
  // device memory, so that bound sizes the split grid.
  c.max_context = p.kv.max_blocks_per_seq * p.kv.block_size;
  c.partition_tokens = 512;
  const int64_t workspace = static_cast<int64_t>(cuda::DecodeAttentionWorkspaceBytes(c));
  if (workspace > attention_workspace_.bytes()) {
    attention_workspace_.Reset();
    ASSIGN_OR_RETURN(attention_workspace_, Allocate(workspace));
  }
  c.workspace = attention_workspace_.data();
  return Cuda(cuda::LaunchDecodeAttention(c, stream_), "Attention");
}
absl::Status CudaBackend::AddBias(float*, const float*, int64_t, int64_t) { return NotOnDeviceYet("AddBias"); }
absl::Status CudaBackend::Add(float*, const float*, int64_t) { return NotOnDeviceYet("Add"); }
absl::Status CudaBackend::GatherRows(const float*, absl::Span<const int32_t>, int64_t, float*) {
  return NotOnDeviceYet("GatherRows");
}

}  // namespace strata
