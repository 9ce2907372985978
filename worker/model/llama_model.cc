#include "worker/model/llama_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"

namespace strata {

namespace {

MatMulParams MatMulFor(const WeightMatrix& w, const float* in, int64_t tokens, float* out,
                       ThreadPool* pool) {
  MatMulParams p;
  p.weight_type = w.type;
  p.weight = w.data;
  p.weight_row_stride = w.row_stride;
  p.rows = w.rows;
  p.cols = w.cols;
  p.input = in;
  p.tokens = tokens;
  p.output = out;
  p.output_stride = w.rows;
  p.pool = pool;
  return p;
}

absl::Status MatMul(const WeightMatrix& w, const float* in, int64_t tokens, float* out,
                    ThreadPool* pool) {
  return LaunchMatMul(MatMulFor(w, in, tokens, out, pool));
}

void AddBias(float* x, const std::vector<float>& b, int64_t tokens) {
  if (b.empty()) return;
  const int64_t n = static_cast<int64_t>(b.size());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < n; ++i) x[t * n + i] += b[i];
  }
}

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Create(const ModelConfig* config,
                                                               const ModelWeights* weights) {
  if (config == nullptr || weights == nullptr) return absl::InvalidArgumentError("null model");
  ASSIGN_OR_RETURN(ModelShard whole, PlanModelShard(*config, *weights, {}, {}));
  return Create(config, weights, whole);
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Create(const ModelConfig* config,
                                                               const ModelWeights* weights,
                                                               const ModelShard& shard) {
  if (config == nullptr || weights == nullptr) return absl::InvalidArgumentError("null model");
  if (static_cast<int64_t>(weights->layers.size()) != shard.n_layers()) {
    return absl::InvalidArgumentError(absl::StrCat("weights hold ", weights->layers.size(),
                                                   " layers, the shard has ", shard.n_layers()));
  }
  return std::unique_ptr<LlamaModel>(new LlamaModel(config, weights, shard));
}

absl::Status LlamaModel::TpAllReduce(float* data, int64_t count) {
  if (shard_.topology.tp_size == 1) return absl::OkStatus();
  if (groups_.tp == nullptr) return absl::FailedPreconditionError("tensor-parallel model has no tp group bound");
  return groups_.tp->AllReduceSum(data, count, parallel::DataType::kF32);
}

absl::Status LlamaModel::Embed(const ForwardBatch& b) {
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const int64_t d = config_->d_model;
  const parallel::ParallelTopology& topo = shard_.topology;
  if (!topo.first_stage()) {
    // Hidden states of the previous stage (same tp lane).
    if (groups_.pp == nullptr) return absl::FailedPreconditionError("pipeline stage has no pp group bound");
    return groups_.pp->Recv(x_.data(), T * d, parallel::DataType::kF32, topo.pp_stage - 1);
  }
  // Vocab-parallel: this rank holds rows [vocab_begin, vocab_end); others add 0.
  const WeightMatrix& embd = weights_->token_embd;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = b.tokens[t] - shard_.tp.vocab_begin;
    float* out = x_.data() + t * d;
    if (row < 0 || row >= shard_.tp.vocab()) {
      std::fill_n(out, d, 0.0f);
      continue;
    }
    RETURN_IF_ERROR(DequantizeRow(embd.type, static_cast<const uint8_t*>(embd.data) + row * embd.row_stride, out, d));
  }
  return TpAllReduce(x_.data(), T * d);
}

absl::Status LlamaModel::LmHead(const ForwardBatch& b, ThreadPool* pool, std::vector<float>* logits) {
  const int64_t d = config_->d_model;
  const int64_t vocab = config_->vocab_size;
  const int64_t R = static_cast<int64_t>(b.logit_rows.size());
  for (int64_t r = 0; r < R; ++r) {
    std::copy_n(x_.data() + b.logit_rows[r] * d, d, xn_.data() + r * d);
  }
  RETURN_IF_ERROR(LaunchRmsNorm({xn_.data(), weights_->output_norm.data(), xn_.data(), R, d, config_->rms_eps}));
  logits->resize(R * vocab);
  const int tp = shard_.topology.tp_size;
  if (tp == 1) return MatMul(weights_->output, xn_.data(), R, logits->data(), pool);
  if (groups_.tp == nullptr) return absl::FailedPreconditionError("tensor-parallel model has no tp group bound");
  // Vocab-parallel: [R, vocab_padded] per rank, gathered as [tp][R][vocab_padded].
  const int64_t pad = shard_.tp.vocab_padded;
  local_logits_.assign(R * pad, 0.0f);
  MatMulParams p = MatMulFor(weights_->output, xn_.data(), R, local_logits_.data(), pool);
  p.output_stride = pad;
  RETURN_IF_ERROR(LaunchMatMul(p));
  gathered_logits_.resize(tp * R * pad);
  RETURN_IF_ERROR(groups_.tp->AllGather(local_logits_.data(), gathered_logits_.data(), R * pad,
                                        parallel::DataType::kF32));
  for (int rank = 0; rank < tp; ++rank) {
    const int64_t begin = vocab * rank / tp, end = vocab * (rank + 1) / tp;  // PlanTensorParallelShard's split
    for (int64_t r = 0; r < R; ++r) {
      std::copy_n(gathered_logits_.data() + (rank * R + r) * pad, end - begin, logits->data() + r * vocab + begin);
    }
  }
  return absl::OkStatus();
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

absl::Status LlamaModel::Forward(const ForwardBatch& b, KvCache* kv, ThreadPool* pool,
                                 std::vector<float>* logits) {
  RETURN_IF_ERROR(Validate(b, *kv));
  const ModelConfig& c = *config_;
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const int64_t d = c.d_model;
  x_.resize(T * d);
  xn_.resize(T * d);
  q_.resize(T * shard_.n_heads() * c.head_dim);
  k_.resize(T * shard_.n_kv_heads() * c.head_dim);
  v_.resize(T * shard_.n_kv_heads() * c.head_dim);
  att_.resize(T * shard_.n_heads() * c.head_dim);
  gate_.resize(T * shard_.d_ff());
  up_.resize(T * shard_.d_ff());

  RETURN_IF_ERROR(Embed(b));
  for (int64_t l = 0; l < shard_.n_layers(); ++l) RETURN_IF_ERROR(Layer(l, b, kv, pool));
  const parallel::ParallelTopology& topo = shard_.topology;
  if (!topo.last_stage()) {
    logits->clear();
    if (groups_.pp == nullptr) return absl::FailedPreconditionError("pipeline stage has no pp group bound");
    return groups_.pp->Send(x_.data(), T * d, parallel::DataType::kF32, topo.pp_stage + 1);
  }
  return LmHead(b, pool, logits);
}

absl::Status LlamaModel::Layer(int64_t l, const ForwardBatch& b, KvCache* kv, ThreadPool* pool) {
  const ModelConfig& c = *config_;
  const LayerWeights& w = weights_->layers[l];
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const int64_t d = c.d_model;
  const int64_t n_heads = shard_.n_heads();
  const int64_t n_kv_heads = shard_.n_kv_heads();
  const int64_t q_dim = n_heads * c.head_dim;
  const int64_t kv_dim = n_kv_heads * c.head_dim;

  // Attention block: x += Wo . attn(rope(Wq xn), rope(Wk xn), Wv xn)
  RETURN_IF_ERROR(LaunchRmsNorm({x_.data(), w.attn_norm.data(), xn_.data(), T, d, c.rms_eps}));
  // Q, K and V read the same input: one quantization, one parallel pass.
  const MatMulParams qkv[] = {MatMulFor(w.wq, xn_.data(), T, q_.data(), pool),
                              MatMulFor(w.wk, xn_.data(), T, k_.data(), pool),
                              MatMulFor(w.wv, xn_.data(), T, v_.data(), pool)};
  RETURN_IF_ERROR(LaunchMatMuls(qkv));
  AddBias(q_.data(), w.bq, T);
  AddBias(k_.data(), w.bk, T);
  AddBias(v_.data(), w.bv, T);
  const bool neox = c.rope_style == RopeStyle::kNeox;
  const float* inv_freq = weights_->rope_inv_freq.data();
  RETURN_IF_ERROR(LaunchRope({q_.data(), T, n_heads, c.head_dim, q_dim, b.positions.data(), inv_freq, neox}));
  RETURN_IF_ERROR(LaunchRope({k_.data(), T, n_kv_heads, c.head_dim, kv_dim, b.positions.data(), inv_freq, neox}));

  const PagedKvView view = kv->LayerView(l, b.block_tables.data(), b.max_blocks_per_seq, b.n_seqs);
  KvWriteParams wp;
  wp.kv = view;
  wp.k = k_.data();
  wp.v = v_.data();
  wp.k_stride = kv_dim;
  wp.v_stride = kv_dim;
  wp.tokens = T;
  wp.token_seq = b.token_seq.data();
  wp.positions = b.positions.data();
  RETURN_IF_ERROR(LaunchKvWrite(wp));
  PagedAttentionParams ap;
  ap.kv = view;
  ap.q = q_.data();
  ap.q_stride = q_dim;
  ap.out = att_.data();
  ap.tokens = T;
  ap.n_heads = static_cast<int32_t>(n_heads);
  ap.token_seq = b.token_seq.data();
  ap.positions = b.positions.data();
  ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  ap.pool = pool;
  RETURN_IF_ERROR(LaunchPagedAttention(ap));
  RETURN_IF_ERROR(MatMul(w.wo, att_.data(), T, xn_.data(), pool));
  RETURN_IF_ERROR(TpAllReduce(xn_.data(), T * d));
  AddInPlace(x_.data(), xn_.data(), T * d);

  // MLP block: x += Wdown . (silu(Wgate xn) * Wup xn)
  RETURN_IF_ERROR(LaunchRmsNorm({x_.data(), w.ffn_norm.data(), xn_.data(), T, d, c.rms_eps}));
  const MatMulParams gate_up[] = {MatMulFor(w.w_gate, xn_.data(), T, gate_.data(), pool),
                                  MatMulFor(w.w_up, xn_.data(), T, up_.data(), pool)};
  RETURN_IF_ERROR(LaunchMatMuls(gate_up));
  RETURN_IF_ERROR(LaunchSwiGlu({gate_.data(), up_.data(), gate_.data(), T * shard_.d_ff()}));
  RETURN_IF_ERROR(MatMul(w.w_down, gate_.data(), T, xn_.data(), pool));
  RETURN_IF_ERROR(TpAllReduce(xn_.data(), T * d));
  AddInPlace(x_.data(), xn_.data(), T * d);
  return absl::OkStatus();
}

}  // namespace strata
