#include "worker/model/llama_model.h"

#include "worker/model/batch_padding.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/batch_padding.h"

namespace strata {

namespace {

MatMulParams MatMulFor(const WeightMatrix& w, const float* in, int64_t tokens, float* out) {
  MatMulParams p;
  p.weight_type = w.type;
  p.weight = w.data;
  p.weight_row_stride = w.row_stride;
  p.weight_scales = w.row_scales;
  p.rows = w.rows;
  p.cols = w.cols;
  p.input = in;
  p.tokens = tokens;
  p.output = out;
  p.output_stride = w.rows;
  return p;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Create(const ModelConfig* config,
                                                               const ModelWeights* weights, Backend* backend) {
  if (config == nullptr || weights == nullptr) return absl::InvalidArgumentError("null model");
  ASSIGN_OR_RETURN(ModelShard whole, PlanModelShard(*config, *weights, {}, {}));
  return Create(config, weights, whole, backend);
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Create(const ModelConfig* config,
                                                               const ModelWeights* weights,
                                                               const ModelShard& shard, Backend* backend) {
  if (config == nullptr || weights == nullptr) return absl::InvalidArgumentError("null model");
  if (backend == nullptr) return absl::InvalidArgumentError("null backend");
  if (static_cast<int64_t>(weights->layers.size()) != shard.n_layers()) {
    return absl::InvalidArgumentError(absl::StrCat("weights hold ", weights->layers.size(),
                                                   " layers, the shard has ", shard.n_layers()));
  }
  auto model = std::unique_ptr<LlamaModel>(new LlamaModel(config, weights, shard, backend));
  ASSIGN_OR_RETURN(model->bw_, backend->PrepareWeights(*weights));
  return model;
}

absl::Status LlamaModel::Reserve(Scratch& s, int64_t bytes) {
  if (s.buffer.bytes() >= bytes && s.buffer.data() != nullptr) return absl::OkStatus();
  s.buffer.Reset();
  ASSIGN_OR_RETURN(s.buffer, backend_->Allocate(std::max<int64_t>(bytes, 64)));
  return absl::OkStatus();
}

absl::Status LlamaModel::ReserveScratch(int64_t T, int64_t R) {
  const ModelConfig& c = *config_;
  const int64_t f = sizeof(float);
  RETURN_IF_ERROR(Reserve(x_, T * c.d_model * f));
  RETURN_IF_ERROR(Reserve(xn_, T * c.d_model * f));
  RETURN_IF_ERROR(Reserve(q_, T * shard_.n_heads() * c.head_dim * f));
  RETURN_IF_ERROR(Reserve(k_, T * shard_.n_kv_heads() * c.head_dim * f));
  RETURN_IF_ERROR(Reserve(v_, T * shard_.n_kv_heads() * c.head_dim * f));
  RETURN_IF_ERROR(Reserve(att_, T * shard_.n_heads() * c.head_dim * f));
  RETURN_IF_ERROR(Reserve(gate_, T * shard_.d_ff() * f));
  RETURN_IF_ERROR(Reserve(up_, T * shard_.d_ff() * f));
  const int tp = shard_.topology.tp_size;
  if (shard_.topology.last_stage() && tp > 1) {
    RETURN_IF_ERROR(Reserve(local_logits_, R * shard_.tp.vocab_padded * f));
    RETURN_IF_ERROR(Reserve(gathered_logits_, tp * R * shard_.tp.vocab_padded * f));
    RETURN_IF_ERROR(Reserve(ordered_logits_, R * c.vocab_size * f));
  } else if (shard_.topology.last_stage()) {
    RETURN_IF_ERROR(Reserve(local_logits_, R * c.vocab_size * f));
  }
  return absl::OkStatus();
}

absl::StatusOr<LlamaModel::BatchInputs> LlamaModel::UploadInputs(const ForwardBatch& b) {
  if (backend_->host_memory()) {
    return BatchInputs{b.tokens.data(), b.positions.data(), b.token_seq.data(), b.block_tables.data()};
  }
  // One device buffer: [tokens][positions][token_seq][block tables], 64-byte aligned parts.
  const auto part = [](size_t n) { return static_cast<int64_t>((n * sizeof(int32_t) + 63) / 64 * 64); };
  const int64_t t = part(b.tokens.size()), bt = part(b.block_tables.size());
  RETURN_IF_ERROR(Reserve(inputs_, 3 * t + bt));
  auto* base = inputs_.get<uint8_t>();
  BatchInputs in{reinterpret_cast<const int32_t*>(base), reinterpret_cast<const int32_t*>(base + t),
                 reinterpret_cast<const int32_t*>(base + 2 * t), reinterpret_cast<const int32_t*>(base + 3 * t)};
  const int64_t n = static_cast<int64_t>(b.tokens.size() * sizeof(int32_t));
  RETURN_IF_ERROR(backend_->CopyToDevice(base, b.tokens.data(), n));
  RETURN_IF_ERROR(backend_->CopyToDevice(base + t, b.positions.data(), n));
  RETURN_IF_ERROR(backend_->CopyToDevice(base + 2 * t, b.token_seq.data(), n));
  RETURN_IF_ERROR(backend_->CopyToDevice(base + 3 * t, b.block_tables.data(),
                                         static_cast<int64_t>(b.block_tables.size() * sizeof(int32_t))));
  return in;
}

absl::Status LlamaModel::TpAllReduce(float* data, int64_t count) {
  if (shard_.topology.tp_size == 1) return absl::OkStatus();
  if (groups_.tp == nullptr) return absl::FailedPreconditionError("tensor-parallel model has no tp group bound");
  // In stream order with the ops around it (Backend::Collective): CudaBackend
  // records it with a decode step's kernels, so the step stays one graph.
  parallel::Communicator* tp = groups_.tp;
  return backend_->Collective([tp, data, count] { return tp->AllReduceSum(data, count, parallel::DataType::kF32); });
}

absl::Status LlamaModel::Embed(const ForwardBatch& b, const BatchInputs& in) {
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const int64_t d = config_->d_model;
  const parallel::ParallelTopology& topo = shard_.topology;
  if (!topo.first_stage()) {
    // Hidden states of the previous stage (same tp lane).
    if (groups_.pp == nullptr) return absl::FailedPreconditionError("pipeline stage has no pp group bound");
    return groups_.pp->Recv(x_.get<float>(), T * d, parallel::DataType::kF32, topo.pp_stage - 1);
  }
  // Vocab-parallel: this rank holds rows [vocab_begin, vocab_end); others add 0.
  EmbeddingLookupParams p;
  p.table = bw_.token_embd;
  p.ids = in.tokens;
  p.out = x_.get<float>();
  p.tokens = T;
  p.vocab_begin = shard_.tp.vocab_begin;
  p.vocab_end = shard_.tp.vocab_begin + shard_.tp.vocab();
  RETURN_IF_ERROR(backend_->EmbeddingLookup(p));
  return TpAllReduce(x_.get<float>(), T * d);
}

absl::StatusOr<float*> LlamaModel::Logits(const ForwardBatch& b) {
  const int64_t d = config_->d_model;
  const int64_t vocab = config_->vocab_size;
  const int64_t R = static_cast<int64_t>(b.logit_rows.size());
  float* rows = xn_.get<float>();
  RETURN_IF_ERROR(backend_->GatherRows(x_.get<float>(), b.logit_rows, d, rows));
  RETURN_IF_ERROR(backend_->RmsNorm({rows, bw_.output_norm, rows, R, d, config_->rms_eps}));
  const int tp = shard_.topology.tp_size;
  if (tp == 1) {
    RETURN_IF_ERROR(backend_->MatMul(MatMulFor(bw_.output, rows, R, local_logits_.get<float>())));
    return local_logits_.get<float>();
  }
  if (groups_.tp == nullptr) return absl::FailedPreconditionError("tensor-parallel model has no tp group bound");
  // Vocab-parallel: [R, vocab_padded] per rank, gathered as [tp][R][vocab_padded],
  // then each rank's columns copied to their place in [R, vocab] on the backend.
  const int64_t pad = shard_.tp.vocab_padded;
  MatMulParams p = MatMulFor(bw_.output, rows, R, local_logits_.get<float>());
  p.output_stride = pad;
  RETURN_IF_ERROR(backend_->MatMul(p));
  parallel::Communicator* tp_group = groups_.tp;
  const float* local = local_logits_.get<float>();
  float* all = gathered_logits_.get<float>();
  const int64_t count = R * pad;
  RETURN_IF_ERROR(backend_->Collective(
      [tp_group, local, all, count] { return tp_group->AllGather(local, all, count, parallel::DataType::kF32); }));
  float* ordered = ordered_logits_.get<float>();
  for (int rank = 0; rank < tp; ++rank) {
    const int64_t begin = vocab * rank / tp, end = vocab * (rank + 1) / tp;  // PlanTensorParallelShard's split
    StridedCopyParams c;
    c.src = all + rank * R * pad;
    c.src_stride = pad;
    c.dst = ordered + begin;
    c.dst_stride = vocab;
    c.rows = R;
    c.cols = end - begin;
    RETURN_IF_ERROR(backend_->StridedCopy(c));
  }
  return ordered;
}

absl::Status LlamaModel::LmHead(const ForwardBatch& b, std::vector<float>* logits) {
  const int64_t R = static_cast<int64_t>(b.logit_rows.size());
  ASSIGN_OR_RETURN(const float* device_logits, Logits(b));
  if (logits == nullptr) return backend_->EndStep();  // the step ran; nobody reads its logits
  logits->resize(R * config_->vocab_size);
  return backend_->CopyToHost(logits->data(), device_logits, R * config_->vocab_size * sizeof(float));
}

absl::Status LlamaModel::Validate(const ForwardBatch& b, const KvCache& kv) const {
  const size_t n = b.tokens.size();
  if (b.positions.size() != n || b.token_seq.size() != n) {
    return absl::InvalidArgumentError("batch: tokens, positions and token_seq differ in length");
  }
  if (b.n_seqs <= 0 || b.max_blocks_per_seq <= 0 ||
      b.block_tables.size() != static_cast<size_t>(b.n_seqs) * b.max_blocks_per_seq) {
    return absl::InvalidArgumentError("batch: block table size does not match n_seqs x max_blocks_per_seq");
  }
  for (size_t t = 0; t < n; ++t) {
    if (b.tokens[t] < 0 || b.tokens[t] >= config_->vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("batch: token id ", b.tokens[t], " at index ", t,
                                                     " outside the vocabulary [0, ", config_->vocab_size, ")"));
    }
    if (b.positions[t] < 0 || b.positions[t] >= config_->context_length) {
      return absl::InvalidArgumentError(absl::StrCat("batch: position ", b.positions[t],
                                                     " outside the context length ", config_->context_length));
    }
  }
  for (int32_t r : b.logit_rows) {
    if (r < 0 || static_cast<size_t>(r) >= n) {
      return absl::InvalidArgumentError(absl::StrCat("batch: logit row ", r, " outside the batch"));
    }
  }
  if (kv.config().n_layers != shard_.n_layers() || kv.config().n_kv_heads != shard_.n_kv_heads() ||
      kv.config().head_dim != config_->head_dim) {
    return absl::InvalidArgumentError("KV cache shape does not match the model");
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::Forward(const ForwardBatch& batch, KvCache* kv, std::vector<float>* logits) {
  ASSIGN_OR_RETURN(const ForwardBatch* ran, RunLayers(batch, kv));
  if (!shard_.topology.last_stage()) {
    if (logits != nullptr) logits->clear();
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(LmHead(*ran, logits));
  if (logits != nullptr) {  // drop pad rows
    logits->resize(batch.logit_rows.size() * static_cast<size_t>(config_->vocab_size));
  }
  return absl::OkStatus();
}

bool LlamaModel::CanSampleOnBackend() const {
  return backend_->samples_logits() && shard_.topology.last_stage();
}

absl::Status LlamaModel::ForwardSample(const ForwardBatch& batch, KvCache* kv,
                                       absl::Span<const RowSamplingKnobs> knobs, std::vector<RowSample>* out) {
  if (!CanSampleOnBackend()) {
    return absl::FailedPreconditionError(
        "ForwardSample needs a backend that samples logits and the last pipeline stage");
  }
  if (knobs.size() != batch.logit_rows.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ForwardSample: ", knobs.size(), " knobs for ",
                                                   batch.logit_rows.size(), " logit rows"));
  }
  ASSIGN_OR_RETURN(const ForwardBatch* ran, RunLayers(batch, kv));
  ASSIGN_OR_RETURN(float* logits, Logits(*ran));
  out->resize(knobs.size());  // the real rows come first; pad rows are not sampled
  return backend_->SampleLogits(logits, static_cast<int32_t>(config_->vocab_size), knobs, out->data());
}

absl::StatusOr<const ForwardBatch*> LlamaModel::RunLayers(const ForwardBatch& batch, KvCache* kv) {
  RETURN_IF_ERROR(Validate(batch, *kv));
  const ForwardBatch* run = &batch;
  if (shard_.topology.pp_size == 1) {  // every tp rank pads the same batch the same way
    const BatchPadding pad = backend_->PaddingFor(batch);
    if (pad.tokens > static_cast<int64_t>(batch.tokens.size()) ||
        pad.blocks_per_seq > batch.max_blocks_per_seq) {
      padded_ = PadBatch(batch, pad);
      run = &padded_;
    }
  }
  const ForwardBatch& b = *run;
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const int64_t d = config_->d_model;
  RETURN_IF_ERROR(ReserveScratch(T, static_cast<int64_t>(b.logit_rows.size())));
  ASSIGN_OR_RETURN(const BatchInputs in, UploadInputs(b));
  RETURN_IF_ERROR(backend_->BeginForward(b));

  RETURN_IF_ERROR(Embed(b, in));
  for (int64_t l = 0; l < shard_.n_layers(); ++l) RETURN_IF_ERROR(Layer(l, b, in, kv));
  const parallel::ParallelTopology& topo = shard_.topology;
  if (!topo.last_stage()) {
    if (groups_.pp == nullptr) return absl::FailedPreconditionError("pipeline stage has no pp group bound");
    RETURN_IF_ERROR(backend_->Synchronize());
    RETURN_IF_ERROR(groups_.pp->Send(x_.get<float>(), T * d, parallel::DataType::kF32, topo.pp_stage + 1));
  }
  return &b;
}

absl::Status LlamaModel::Layer(int64_t l, const ForwardBatch& b, const BatchInputs& in, KvCache* kv) {
  const ModelConfig& c = *config_;
  const BackendLayerWeights& w = bw_.layers[l];
  Backend& be = *backend_;
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const int64_t d = c.d_model;
  const int64_t n_heads = shard_.n_heads();
  const int64_t n_kv_heads = shard_.n_kv_heads();
  const int64_t q_dim = n_heads * c.head_dim;
  const int64_t kv_dim = n_kv_heads * c.head_dim;
  float* x = x_.get<float>();
  float* xn = xn_.get<float>();
  float* q = q_.get<float>();
  float* k = k_.get<float>();
  float* v = v_.get<float>();
  float* att = att_.get<float>();
  float* gate = gate_.get<float>();
  float* up = up_.get<float>();

  // Attention block: x += Wo . attn(rope(Wq xn), rope(Wk xn), Wv xn)
  RETURN_IF_ERROR(be.RmsNorm({x, w.attn_norm, xn, T, d, c.rms_eps}));
  // Q, K and V read the same input: one quantization, one parallel pass.
  const MatMulParams qkv[] = {MatMulFor(w.wq, xn, T, q), MatMulFor(w.wk, xn, T, k), MatMulFor(w.wv, xn, T, v)};
  RETURN_IF_ERROR(be.MatMuls(qkv));
  if (w.bq != nullptr) RETURN_IF_ERROR(be.AddBias(q, w.bq, T, q_dim));
  if (w.bk != nullptr) RETURN_IF_ERROR(be.AddBias(k, w.bk, T, kv_dim));
  if (w.bv != nullptr) RETURN_IF_ERROR(be.AddBias(v, w.bv, T, kv_dim));
  const bool neox = c.rope_style == RopeStyle::kNeox;
  RETURN_IF_ERROR(be.Rope({q, T, n_heads, c.head_dim, q_dim, in.positions, bw_.rope_inv_freq, neox}));
  RETURN_IF_ERROR(be.Rope({k, T, n_kv_heads, c.head_dim, kv_dim, in.positions, bw_.rope_inv_freq, neox}));

  const PagedKvView view = kv->LayerView(l, in.block_tables, b.max_blocks_per_seq, b.n_seqs);
  KvWriteParams wp;
  wp.kv = view;
  wp.k = k;
  wp.v = v;
  wp.k_stride = kv_dim;
  wp.v_stride = kv_dim;
  wp.tokens = T;
  wp.token_seq = in.token_seq;
  wp.positions = in.positions;
  RETURN_IF_ERROR(be.KvWrite(wp));
  PagedAttentionParams ap;
  ap.kv = view;
  ap.q = q;
  ap.q_stride = q_dim;
  ap.out = att;
  ap.tokens = T;
  ap.n_heads = static_cast<int32_t>(n_heads);
  ap.token_seq = in.token_seq;
  ap.positions = in.positions;
  ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  RETURN_IF_ERROR(be.Attention(ap));
  RETURN_IF_ERROR(be.MatMul(MatMulFor(w.wo, att, T, xn)));
  RETURN_IF_ERROR(TpAllReduce(xn, T * d));
  RETURN_IF_ERROR(be.Add(x, xn, T * d));

  // MLP block: x += Wdown . (silu(Wgate xn) * Wup xn)
  RETURN_IF_ERROR(be.RmsNorm({x, w.ffn_norm, xn, T, d, c.rms_eps}));
  const MatMulParams gate_up[] = {MatMulFor(w.w_gate, xn, T, gate), MatMulFor(w.w_up, xn, T, up)};
  RETURN_IF_ERROR(be.MatMuls(gate_up));
  RETURN_IF_ERROR(be.SwiGlu({gate, up, gate, T * shard_.d_ff()}));
  RETURN_IF_ERROR(be.MatMul(MatMulFor(w.w_down, gate, T, xn)));
  RETURN_IF_ERROR(TpAllReduce(xn, T * d));
  return be.Add(x, xn, T * d);
}

}  // namespace strata
