#include "worker/backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cuda/gemm/weight_quant.h"
#include "kernels/cuda/prefill/prefill_plan.h"

namespace strata {

namespace {

// The GGUF block types the weight-only kernels read in place.
bool KeptQuantised(TensorType t, cuda::WeightQuant* q) {
  switch (t) {
    case TensorType::kQ8_0:
      *q = cuda::WeightQuant::kQ8_0;
      return true;
    case TensorType::kQ4_0:
      *q = cuda::WeightQuant::kQ4_0;
      return true;
    case TensorType::kQ4_1:
      *q = cuda::WeightQuant::kQ4_1;
      return true;
    default:
      return false;
  }
}

int64_t DenseRowBytes(const WeightMatrix& w) {
  cuda::WeightQuant q = cuda::WeightQuant::kQ8_0;
  if (KeptQuantised(w.type, &q)) return w.cols / cuda::kWeightQuantBlock * cuda::WeightQuantBlockBytes(q);
  return w.cols * 2;  // F16 / BF16
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(std::unique_ptr<KernelOps> ops,
                                                                 const CudaBackendOptions& options) {
  if (ops == nullptr) return absl::InvalidArgumentError("CudaBackend: null KernelOps");
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(ops), options));
}

CudaBackend::~CudaBackend() {
  pending_.clear();  // a step that never finished: its work is dropped
  recording_ = false;
  DropGraphs();
  // Nothing may still read the scratch buffers freed after this.
  ops_->Synchronize().IgnoreError();
}

// --- recording and graphs --------------------------------------------------------

absl::Status CudaBackend::Run(char kind, Work work) {
  if (!recording_) return work();
  pending_.push_back(std::move(work));
  pending_kinds_.push_back(kind);
  return absl::OkStatus();
}

absl::Status CudaBackend::FlushEager() {
  if (!recording_) return absl::OkStatus();
  recording_ = false;
  std::vector<Work> work = std::move(pending_);
  pending_.clear();
  pending_kinds_.clear();
  for (Work& w : work) RETURN_IF_ERROR(w());
  return absl::OkStatus();
}

absl::Status CudaBackend::FinishStep() {
  if (!recording_) return absl::OkStatus();
  recording_ = false;
  std::vector<Work> work = std::move(pending_);
  const std::string key = absl::StrCat(step_key_, "/", pending_kinds_);
  pending_.clear();
  pending_kinds_.clear();
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    if (!graphs_.empty() && static_cast<int>(graphs_.size()) >= options_.max_graphs) {
      auto lru = graphs_.begin();
      for (auto g = graphs_.begin(); g != graphs_.end(); ++g) {
        if (g->second.last_used < lru->second.last_used) lru = g;
      }
      ops_->DestroyGraph(lru->second.graph);  // CUDA frees it after an in-flight launch
      graphs_.erase(lru);
    }
    RETURN_IF_ERROR(ops_->BeginCapture());
    for (Work& w : work) {
      if (absl::Status s = w(); !s.ok()) {
        if (absl::StatusOr<int64_t> g = ops_->EndCapture(); g.ok()) ops_->DestroyGraph(*g);
        return s;
      }
    }
    ASSIGN_OR_RETURN(const int64_t graph, ops_->EndCapture());
    it = graphs_.emplace(key, CachedGraph{graph, 0}).first;
  }
  it->second.last_used = ++graph_clock_;
  return ops_->LaunchGraph(it->second.graph);
}

void CudaBackend::DropGraphs() {
  for (auto& [key, cached] : graphs_) ops_->DestroyGraph(cached.graph);
  graphs_.clear();
}

std::string CudaBackend::Describe() const {
  const KernelDeviceInfo& i = ops_->info();
  return absl::StrFormat("cuda:%d %s, sm_%d, %.1f GiB", i.index, i.name, i.sm,
                         static_cast<double>(i.total_bytes) / (1 << 30));
}

absl::StatusOr<DeviceBuffer> CudaBackend::Allocate(int64_t bytes) {
  RETURN_IF_ERROR(FlushEager());
  ASSIGN_OR_RETURN(void* p, ops_->Malloc(bytes));
  // A new buffer may sit where a freed one was: graphs baked the old meaning.
  ++epoch_;
  DropGraphs();
  return DeviceBuffer(this, p, bytes);
}

void CudaBackend::Free(void* data) {
  FlushEager().IgnoreError();  // recorded work may read `data`; its errors surface at the next sync
  ++epoch_;
  DropGraphs();
  ops_->Free(data);
}

absl::Status CudaBackend::CopyToDevice(void* dst, const void* host_src, int64_t bytes) {
  RETURN_IF_ERROR(FlushEager());
  return ops_->CopyToDevice(dst, host_src, bytes);
}
absl::Status CudaBackend::CopyToHost(void* host_dst, const void* src, int64_t bytes) {
  RETURN_IF_ERROR(FinishStep());
  return ops_->CopyToHost(host_dst, src, bytes);
}
absl::Status CudaBackend::FillZero(void* dst, int64_t bytes) {
  RETURN_IF_ERROR(FlushEager());
  return ops_->FillZero(dst, bytes);
}
absl::Status CudaBackend::EndStep() {
  RETURN_IF_ERROR(FinishStep());
  return ops_->Synchronize();
}
absl::Status CudaBackend::Synchronize() {
  RETURN_IF_ERROR(FlushEager());
  return ops_->Synchronize();
}

absl::Status CudaBackend::Reserve(DeviceBuffer& buf, int64_t bytes) {
  if (bytes <= buf.bytes()) return absl::OkStatus();
  RETURN_IF_ERROR(FlushEager());
  RETURN_IF_ERROR(ops_->Synchronize());  // enqueued work may still read the old buffer
  buf.Reset();
  ASSIGN_OR_RETURN(buf, Allocate(bytes));
  return absl::OkStatus();
}

// --- weights -------------------------------------------------------------------

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
  cuda::WeightQuant q = cuda::WeightQuant::kQ8_0;
  if (w.type == TensorType::kF16 || w.type == TensorType::kBF16 || KeptQuantised(w.type, &q)) {
    // Packed rows: the GEMM's leading dimension / the kernels' row stride.
    const int64_t row = DenseRowBytes(w);
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

absl::StatusOr<WeightMatrix> CudaBackend::UploadLayerMatrix(const WeightMatrix& w, BackendWeights& out) {
  // FP8 GEMM operands: 16-byte rows of W and X (cols % 16), 16-byte rows of the
  // f32 output (rows % 4).
  if (!options_.fp8_weights || w.cols % 16 != 0 || w.rows % 4 != 0) return UploadMatrix(w, out);
  std::vector<uint8_t> codes(static_cast<size_t>(w.rows * w.cols));
  std::vector<float> scales(static_cast<size_t>(w.rows));
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    RETURN_IF_ERROR(DequantizeRow(w.type, static_cast<const uint8_t*>(w.data) + r * w.row_stride, row.data(), w.cols));
    scales[r] = QuantizeRowFp8(row.data(), w.cols, codes.data() + r * w.cols);
    if (!std::isfinite(scales[r])) {
      return absl::InvalidArgumentError(absl::StrCat("fp8 weights: row ", r, " of a ", w.rows, "x", w.cols,
                                                     " matrix has a non-finite value"));
    }
  }
  WeightMatrix d = w;
  d.file_mapped = false;
  d.type = TensorType::kF8E4M3;
  d.row_stride = w.cols;
  ASSIGN_OR_RETURN(d.data, Upload(codes.data(), static_cast<int64_t>(codes.size()), out));
  ASSIGN_OR_RETURN(void* sc, Upload(scales.data(), static_cast<int64_t>(scales.size() * sizeof(float)), out));
  d.row_scales = static_cast<const float*>(sc);
  return d;
}

absl::StatusOr<const float*> CudaBackend::UploadVector(const std::vector<float>& v, BackendWeights& out) {
  if (v.empty()) return nullptr;
  ASSIGN_OR_RETURN(void* p, Upload(v.data(), static_cast<int64_t>(v.size() * sizeof(float)), out));
  return static_cast<const float*>(p);
}

absl::StatusOr<BackendWeights> CudaBackend::PrepareWeights(const ModelWeights& w) {
  if (options_.fp8_weights && ops_->info().sm < 89) {
    return absl::FailedPreconditionError(absl::StrCat("fp8 weights need an sm_89 or newer GPU (cuda:",
                                                      ops_->info().index, " is sm_", ops_->info().sm, ")"));
  }
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
    ASSIGN_OR_RETURN(b.wq, UploadLayerMatrix(l.wq, out));
    ASSIGN_OR_RETURN(b.wk, UploadLayerMatrix(l.wk, out));
    ASSIGN_OR_RETURN(b.wv, UploadLayerMatrix(l.wv, out));
    ASSIGN_OR_RETURN(b.wo, UploadLayerMatrix(l.wo, out));
    ASSIGN_OR_RETURN(b.bq, UploadVector(l.bq, out));
    ASSIGN_OR_RETURN(b.bk, UploadVector(l.bk, out));
    ASSIGN_OR_RETURN(b.bv, UploadVector(l.bv, out));
    ASSIGN_OR_RETURN(b.ffn_norm, UploadVector(l.ffn_norm, out));
    ASSIGN_OR_RETURN(b.w_gate, UploadLayerMatrix(l.w_gate, out));
    ASSIGN_OR_RETURN(b.w_up, UploadLayerMatrix(l.w_up, out));
    ASSIGN_OR_RETURN(b.w_down, UploadLayerMatrix(l.w_down, out));
    out.layers.push_back(b);
  }
  RETURN_IF_ERROR(Synchronize());  // the host staging buffers die here
  return out;
}

// --- steps ---------------------------------------------------------------------

int64_t CudaBackend::GraphBatchBucket(int64_t tokens) const {
  int64_t bucket = tokens <= 4 ? 1 : (tokens + 7) / 8 * 8;
  if (tokens <= 4) {
    while (bucket < tokens) bucket *= 2;
  }
  return bucket <= options_.max_graph_tokens ? bucket : tokens;
}

BatchPadding CudaBackend::PaddingFor(const ForwardBatch& b) const {
  const int64_t tokens = static_cast<int64_t>(b.tokens.size());
  // Not dependent on options_.cuda_graphs: the ranks of a TP group must pad
  // alike whatever each was told about graphs.
  if (tokens == 0 || tokens > options_.max_graph_tokens || tokens != b.n_seqs) {
    return {};
  }
  std::vector<bool> seen(static_cast<size_t>(b.n_seqs), false);  // one token per sequence
  for (const int32_t s : b.token_seq) {
    if (s < 0 || s >= b.n_seqs || seen[s]) return {};
    seen[s] = true;
  }
  BatchPadding pad;
  pad.tokens = GraphBatchBucket(tokens);
  pad.blocks_per_seq = 1;
  while (pad.blocks_per_seq < b.max_blocks_per_seq) pad.blocks_per_seq *= 2;
  return pad;
}

absl::Status CudaBackend::Collective(std::function<absl::Status()> collective) {
  return Run('C', [this, collective = std::move(collective)] { return ops_->Collective(collective); });
}

void CudaBackend::ForgetCapturedWork() {
  FlushEager().IgnoreError();  // errors surface at the next sync
  ++epoch_;
  DropGraphs();
}

absl::Status CudaBackend::SampleLogits(const float* logits, int32_t vocab,
                                       absl::Span<const RowSamplingKnobs> knobs, RowSample* out) {
  const int64_t rows = static_cast<int64_t>(knobs.size());
  if (rows == 0) return absl::OkStatus();
  if (logits == nullptr || vocab <= 0 || out == nullptr) {
    return absl::InvalidArgumentError("SampleLogits: null logits/out or vocab <= 0");
  }
  RETURN_IF_ERROR(FinishStep());  // the step's graph (or kernels) first
  // One buffer, capacity rows a power of two >= 64 (grows rarely: a new
  // buffer drops the graphs):
  //   u f64[cap] | temperature f32[cap] | top_p f32[cap] | min_p f32[cap] |
  //   top_k i32[cap] | tokens i32[cap] | logprobs f32[cap]
  int64_t cap = 64;
  while (cap < rows) cap *= 2;
  const int64_t bytes = cap * (8 + 6 * 4);
  if (sample_args_.bytes() < bytes) RETURN_IF_ERROR(Reserve(sample_args_, bytes));
  cap = sample_args_.bytes() / (8 + 6 * 4);
  const int64_t in_bytes = cap * (8 + 4 * 4);
  sample_staging_.resize(static_cast<size_t>(cap) * (8 + 6 * 4));
  char* h = sample_staging_.data();
  auto* u = reinterpret_cast<double*>(h);
  auto* temperature = reinterpret_cast<float*>(h + cap * 8);
  float* top_p = temperature + cap;
  float* min_p = top_p + cap;
  auto* top_k = reinterpret_cast<int32_t*>(min_p + cap);
  for (int64_t r = 0; r < rows; ++r) {
    u[r] = knobs[r].u;
    temperature[r] = knobs[r].temperature;
    top_p[r] = knobs[r].top_p;
    min_p[r] = knobs[r].min_p;
    top_k[r] = knobs[r].top_k;
  }
  RETURN_IF_ERROR(ops_->CopyToDevice(sample_args_.data(), h, in_bytes));
  char* d = static_cast<char*>(sample_args_.data());
  cuda::SampleParams p;
  p.logits = logits;
  p.rows = rows;
  p.vocab = vocab;
  p.logits_stride = vocab;
  p.u = reinterpret_cast<const double*>(d);
  p.temperature = reinterpret_cast<const float*>(d + cap * 8);
  p.top_p = p.temperature + cap;
  p.min_p = p.top_p + cap;
  p.top_k = reinterpret_cast<const int32_t*>(p.min_p + cap);
  p.tokens = reinterpret_cast<int32_t*>(d + in_bytes);
  p.logprobs = reinterpret_cast<float*>(d + in_bytes + cap * 4);
  RETURN_IF_ERROR(ops_->Sample(p));
  char* results = h + in_bytes;
  RETURN_IF_ERROR(ops_->CopyToHost(results, d + in_bytes, cap * 8));
  const auto* tokens = reinterpret_cast<const int32_t*>(results);
  const auto* logprobs = reinterpret_cast<const float*>(results + cap * 4);
  for (int64_t r = 0; r < rows; ++r) out[r] = RowSample{tokens[r], logprobs[r]};
  return absl::OkStatus();
}

absl::Status CudaBackend::BeginForward(const ForwardBatch& b) {
  RETURN_IF_ERROR(FlushEager());
  step_.valid = true;
  step_.batch = &b;
  step_.attention_planned = false;
  step_.prefill = false;
  step_.max_context = 0;
  step_.max_rows = 0;
  int64_t rows = 0;
  for (size_t t = 0; t < b.tokens.size(); ++t) {
    step_.max_context = std::max(step_.max_context, b.positions[t] + 1);
    rows = (t > 0 && b.token_seq[t] == b.token_seq[t - 1]) ? rows + 1 : 1;
    step_.max_rows = std::max(step_.max_rows, rows);
  }
  const int64_t tokens = static_cast<int64_t>(b.tokens.size());
  if (options_.cuda_graphs && step_.max_rows == 1 && tokens <= options_.max_graph_tokens) {
    // Decode: a power-of-two context bucket keeps the attention grid (baked
    // into the graph) the same for many steps.
    int32_t bucket = 64;
    while (bucket < step_.max_context) bucket *= 2;
    step_.max_context = bucket;  // Attention caps it at the block table's reach
    recording_ = true;
    step_key_ = absl::StrCat(epoch_, "/", tokens, "/", b.n_seqs, "/", b.max_blocks_per_seq, "/",
                             b.logit_rows.size(), "/", step_.max_context);
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::PlanAttention(const PagedAttentionParams& p) {
  step_.attention_planned = true;
  step_.prefill = false;
  const int32_t head_dim = p.kv.head_dim;
  if (!step_.valid || step_.max_rows < kPrefillMinRows || (head_dim != 64 && head_dim != 128)) {
    return absl::OkStatus();
  }
  const ForwardBatch& b = *step_.batch;
  cuda::PrefillPlan plan;
  if (cuda::BuildPrefillPlan(b.token_seq.data(), b.positions.data(), static_cast<int64_t>(b.tokens.size()),
                             p.kv.n_seqs, p.n_heads, p.kv.n_kv_heads, &plan) != nullptr) {
    return absl::OkStatus();  // not a shape the prefill kernel takes: the decode kernel serves any batch
  }
  std::vector<int32_t> packed;
  packed.reserve(plan.q_start.size() + plan.q_pos0.size() + plan.tile_start.size());
  packed.insert(packed.end(), plan.q_start.begin(), plan.q_start.end());
  packed.insert(packed.end(), plan.q_pos0.begin(), plan.q_pos0.end());
  packed.insert(packed.end(), plan.tile_start.begin(), plan.tile_start.end());
  const int64_t bytes = static_cast<int64_t>(packed.size() * sizeof(int32_t));
  RETURN_IF_ERROR(Reserve(step_.prefill_plan, bytes));
  RETURN_IF_ERROR(CopyToDevice(step_.prefill_plan.data(), packed.data(), bytes));
  step_.prefill = true;
  step_.n_tiles = plan.n_tiles;
  step_.group = plan.group;
  step_.n_seqs = p.kv.n_seqs;
  return absl::OkStatus();
}

// --- ops -----------------------------------------------------------------------

absl::Status CudaBackend::EmbeddingLookup(const EmbeddingLookupParams& p) {
  cuda::EmbeddingParams c;
  switch (p.table.type) {
    case TensorType::kF32: c.dtype = cuda::EmbeddingDtype::kF32; break;
    case TensorType::kF16: c.dtype = cuda::EmbeddingDtype::kF16; break;
    case TensorType::kBF16: c.dtype = cuda::EmbeddingDtype::kBF16; break;
    case TensorType::kQ8_0: c.dtype = cuda::EmbeddingDtype::kQ8_0; break;
    case TensorType::kQ4_0: c.dtype = cuda::EmbeddingDtype::kQ4_0; break;
    case TensorType::kQ4_1: c.dtype = cuda::EmbeddingDtype::kQ4_1; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("CudaBackend::EmbeddingLookup: table type ",
                                                     TensorTypeName(p.table.type),
                                                     " is not a device weight type (PrepareWeights converts it)"));
  }
  c.table = p.table.data;
  c.row_stride = p.table.row_stride;
  c.ids = p.ids;
  c.out = p.out;
  c.tokens = p.tokens;
  c.dim = p.table.cols;
  c.vocab_begin = p.vocab_begin;
  c.vocab_end = p.vocab_end;
  return Run('E', [this, c] { return ops_->Embedding(c); });
}

absl::Status CudaBackend::CastInput(const MatMulParams& p, cuda::GemmDtype dtype) {
  const int64_t n = p.tokens * p.cols;
  RETURN_IF_ERROR(Reserve(x16_, n * 2));
  cuda::CastParams c;
  c.kind = dtype == cuda::GemmDtype::kF16 ? cuda::CastKind::kF32ToF16 : cuda::CastKind::kF32ToBF16;
  c.in = p.input;
  c.out = x16_.data();
  c.n = n;
  return Run('C', [this, c] { return ops_->Cast(c); });
}

absl::Status CudaBackend::Gemm(const MatMulParams& p, const void* w, int64_t w_row_stride, int64_t rows,
                               cuda::GemmDtype dtype, float* y) {
  cuda::GemmRequest req;
  req.shape = {p.tokens, rows, p.cols};
  req.w_dtype = req.x_dtype = dtype;
  req.y_dtype = cuda::GemmDtype::kF32;
  req.w_row_stride = w_row_stride;
  req.x_row_stride = p.cols * 2;
  req.y_row_stride = (p.output_stride > 0 ? p.output_stride : p.rows) * 4;
  req.sm = ops_->info().sm;
  ASSIGN_OR_RETURN(const cuda::CublasLtGemmPlan plan, cuda::PlanGemm(req));
  cuda::GemmOperands o;
  o.w = w;
  o.x = x16_.data();
  o.y = y;
  return Run('M', [this, plan, o] { return ops_->Gemm(plan, o); });
}

absl::Status CudaBackend::QuantMatMul(const MatMulParams& p, bool* x16_is_bf16_of_input) {
  cuda::WeightQuant q = cuda::WeightQuant::kQ8_0;
  KeptQuantised(p.weight_type, &q);
  const int64_t out_stride = p.output_stride > 0 ? p.output_stride : p.rows;
  if (p.tokens <= cuda::kQGemvMaxM) {
    cuda::QGemvParams g;
    g.quant = q;
    g.w = p.weight;
    g.w_row_stride = p.weight_row_stride;
    g.n = p.rows;
    g.k = p.cols;
    g.x = p.input;
    g.x_stride = p.cols;
    g.m = p.tokens;
    g.y = p.output;
    g.y_stride = out_stride;
    return Run('Q', [this, g] { return ops_->QGemv(g); });
  }
  // Prefill: BF16 GEMMs over row chunks of W dequantised on the device.
  if (!*x16_is_bf16_of_input) {
    RETURN_IF_ERROR(CastInput(p, cuda::GemmDtype::kBF16));
    *x16_is_bf16_of_input = true;
  }
  const int64_t row_bytes = p.cols * 2;
  int64_t chunk = std::max<int64_t>(64, kDequantChunkBytes / row_bytes / 64 * 64);
  chunk = std::min(chunk, p.rows);
  RETURN_IF_ERROR(Reserve(w_bf16_, chunk * row_bytes));
  for (int64_t r0 = 0; r0 < p.rows; r0 += chunk) {
    const int64_t n = std::min(chunk, p.rows - r0);
    cuda::DequantBf16Params d;
    d.quant = q;
    d.src = static_cast<const uint8_t*>(p.weight) + r0 * p.weight_row_stride;
    d.src_row_stride = p.weight_row_stride;
    d.rows = n;
    d.cols = p.cols;
    d.dst = w_bf16_.as<uint16_t>();
    d.dst_row_stride = p.cols;
    RETURN_IF_ERROR(Run('D', [this, d] { return ops_->DequantBf16(d); }));
    RETURN_IF_ERROR(Gemm(p, w_bf16_.data(), row_bytes, n, cuda::GemmDtype::kBF16, p.output + r0));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::Fp8MatMul(const MatMulParams& p, bool quantise_input) {
  if (p.weight_scales == nullptr) return absl::InvalidArgumentError("CudaBackend::MatMuls: F8_E4M3 weight without scales");
  if (quantise_input) {
    RETURN_IF_ERROR(Reserve(x8_, p.tokens * p.cols));
    RETURN_IF_ERROR(Reserve(x8_scale_, 32));
    cuda::Fp8QuantizeParams q;
    q.x = p.input;
    q.codes = x8_.as<uint8_t>();
    q.rows = p.tokens;
    q.cols = p.cols;
    q.mode = cuda::Fp8QuantizeMode::kPerTensor;
    q.scales = x8_scale_.as<float>();
    q.amax_bits = reinterpret_cast<uint32_t*>(x8_scale_.as<uint8_t>() + 16);
    RETURN_IF_ERROR(Run('F', [this, q] { return ops_->Fp8Quantize(q); }));
  }
  cuda::GemmRequest req;
  req.shape = {p.tokens, p.rows, p.cols};
  req.w_dtype = req.x_dtype = cuda::GemmDtype::kFp8E4M3;
  req.y_dtype = cuda::GemmDtype::kF32;
  req.scale_mode = cuda::Fp8ScaleMode::kPerChannel;
  req.w_row_stride = p.weight_row_stride > 0 ? p.weight_row_stride : p.cols;
  req.x_row_stride = p.cols;
  req.y_row_stride = (p.output_stride > 0 ? p.output_stride : p.rows) * 4;
  req.sm = ops_->info().sm;
  ASSIGN_OR_RETURN(const cuda::CublasLtGemmPlan plan, cuda::PlanGemm(req));
  cuda::GemmOperands o;
  o.w = p.weight;
  o.x = x8_.data();
  o.y = p.output;
  o.w_scale = p.weight_scales;
  o.x_scale = x8_scale_.as<float>();
  return Run('M', [this, plan, o] { return ops_->Gemm(plan, o); });
}

absl::Status CudaBackend::MatMuls(absl::Span<const MatMulParams> ps) {
  // The calls of one span share their input (Q/K/V, gate/up): cast it once.
  const float* cast_of = nullptr;
  cuda::GemmDtype cast_dtype = cuda::GemmDtype::kF32;
  for (const MatMulParams& p : ps) {
    if (p.input == nullptr || p.output == nullptr || p.weight == nullptr) {
      return absl::InvalidArgumentError("CudaBackend::MatMuls: null input, output or weight");
    }
    if (p.tokens < 0 || p.rows <= 0 || p.cols <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("CudaBackend::MatMuls: bad shape tokens ", p.tokens, ", rows ",
                                                     p.rows, ", cols ", p.cols));
    }
    if (p.tokens == 0) continue;
    cuda::WeightQuant q = cuda::WeightQuant::kQ8_0;
    if (KeptQuantised(p.weight_type, &q)) {
      bool bf16_ready = cast_of == p.input && cast_dtype == cuda::GemmDtype::kBF16;
      RETURN_IF_ERROR(QuantMatMul(p, &bf16_ready));
      if (bf16_ready) {
        cast_of = p.input;
        cast_dtype = cuda::GemmDtype::kBF16;
      }
      continue;
    }
    if (p.weight_type == TensorType::kF8E4M3) {
      const bool quantise = cast_of != p.input || cast_dtype != cuda::GemmDtype::kFp8E4M3;
      RETURN_IF_ERROR(Fp8MatMul(p, quantise));
      cast_of = p.input;
      cast_dtype = cuda::GemmDtype::kFp8E4M3;
      continue;
    }
    cuda::GemmDtype dtype;
    if (p.weight_type == TensorType::kBF16) {
      dtype = cuda::GemmDtype::kBF16;
    } else if (p.weight_type == TensorType::kF16) {
      dtype = cuda::GemmDtype::kF16;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("CudaBackend::MatMuls: weight type ",
                                                     TensorTypeName(p.weight_type),
                                                     " is not a device weight type (PrepareWeights converts it)"));
    }
    if (cast_of != p.input || cast_dtype != dtype) {
      RETURN_IF_ERROR(CastInput(p, dtype));
      cast_of = p.input;
      cast_dtype = dtype;
    }
    const int64_t w_stride = p.weight_row_stride > 0 ? p.weight_row_stride : p.cols * 2;
    RETURN_IF_ERROR(Gemm(p, p.weight, w_stride, p.rows, dtype, p.output));
  }
  return absl::OkStatus();
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
  return Run('N', [this, c] { return ops_->RmsNormResidual(c); });
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
  return Run('R', [this, c] { return ops_->Rope(c); });
}

absl::Status CudaBackend::SwiGlu(const SwiGluParams& p) {
  const cuda::SwiGluParams c{p.gate, p.up, p.out, p.n};
  return Run('S', [this, c] { return ops_->SwiGlu(c); });
}

absl::Status CudaBackend::KvWrite(const KvWriteParams& p) {
  // Every KvDtype: codes and scales bit-exact with the CPU's.
  cuda::KvWriteParams c;
  c.kv = p.kv;
  c.k = p.k;
  c.v = p.v;
  c.k_stride = p.k_stride;
  c.v_stride = p.v_stride;
  c.tokens = p.tokens;
  c.token_seq = p.token_seq;
  c.positions = p.positions;
  return Run('K', [this, c] { return ops_->KvWrite(c); });
}

absl::Status CudaBackend::Attention(const PagedAttentionParams& p) {
  if (!step_.attention_planned) RETURN_IF_ERROR(PlanAttention(p));
  if (step_.prefill && p.kv.n_seqs == step_.n_seqs) {
    const int32_t* plan = step_.prefill_plan.as<int32_t>();
    cuda::PrefillAttentionParams c;
    c.kv = p.kv;
    c.q = p.q;
    c.q_stride = p.q_stride;
    c.out = p.out;
    c.out_stride = static_cast<int64_t>(p.n_heads) * p.kv.head_dim;
    c.n_heads = p.n_heads;
    c.scale = p.scale;
    c.q_start = plan;
    c.q_pos0 = plan + step_.n_seqs + 1;
    c.tile_start = plan + 2 * step_.n_seqs + 1;
    c.n_tiles = step_.n_tiles;
    c.plan_group = step_.group;
    return Run('P', [this, c] { return ops_->PrefillAttention(c); });
  }
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
  // Positions are in device memory: the host view of the step bounds them; without
  // one, the block table's reach does.
  const int32_t reach = p.kv.max_blocks_per_seq * p.kv.block_size;
  c.max_context = step_.valid && step_.max_context > 0 ? std::min(step_.max_context, reach) : reach;
  c.partition_tokens =
      cuda::SuggestDecodePartitionTokens(p.tokens, p.kv.n_kv_heads, c.max_context, ops_->info().sm_count);
  const int64_t workspace = static_cast<int64_t>(cuda::DecodeAttentionWorkspaceBytes(c));
  RETURN_IF_ERROR(Reserve(attention_workspace_, workspace));
  c.workspace = attention_workspace_.data();
  return Run('A', [this, c] { return ops_->DecodeAttention(c); });
}

absl::Status CudaBackend::AddBias(float* x, const float* bias, int64_t rows, int64_t cols) {
  cuda::BiasAddParams c;
  c.x = x;
  c.bias = bias;
  c.rows = rows;
  c.cols = cols;
  return Run('B', [this, c] { return ops_->BiasAdd(c); });
}

absl::Status CudaBackend::Add(float* x, const float* y, int64_t n) {
  cuda::ResidualAddParams c;
  c.x = x;
  c.y = y;
  c.n = n;
  return Run('+', [this, c] { return ops_->ResidualAdd(c); });
}

absl::Status CudaBackend::StridedCopy(const StridedCopyParams& p) {
  if (p.rows < 0 || p.cols < 0 || p.src_stride < p.cols || p.dst_stride < p.cols) {
    return absl::InvalidArgumentError(absl::StrCat("StridedCopy: ", p.rows, " rows of ", p.cols,
                                                   " with strides ", p.src_stride, "/", p.dst_stride));
  }
  return Run('S', [this, p] { return ops_->StridedCopy(p); });
}

absl::Status CudaBackend::GatherRows(const float* src, absl::Span<const int32_t> rows, int64_t cols, float* dst) {
  if (rows.empty()) return absl::OkStatus();
  int32_t max_row = 0;
  for (const int32_t r : rows) {
    if (r < 0) return absl::InvalidArgumentError(absl::StrCat("GatherRows: negative row ", r));
    max_row = std::max(max_row, r);
  }
  // The row ids are this step's data: copied now (outside any graph), read by
  // the kernel whenever it runs.
  const int64_t bytes = static_cast<int64_t>(rows.size() * sizeof(int32_t));
  RETURN_IF_ERROR(Reserve(row_ids_, bytes));
  RETURN_IF_ERROR(ops_->CopyToDevice(row_ids_.data(), rows.data(), bytes));
  cuda::GatherRowsParams c;
  c.src = src;
  c.rows = row_ids_.as<int32_t>();
  c.dst = dst;
  c.n_rows = static_cast<int64_t>(rows.size());
  c.cols = cols;
  c.src_rows = static_cast<int64_t>(max_row) + 1;
  return Run('G', [this, c] { return ops_->GatherRows(c); });
}

}  // namespace strata
