#include "worker/model/model_shard.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tensor_type.h"

namespace strata {

namespace {

// Rows [begin, end) of `m`: a view (contiguous rows).
WeightMatrix RowSlice(const WeightMatrix& m, int64_t begin, int64_t end) {
  WeightMatrix s = m;
  s.data = static_cast<const uint8_t*>(m.data) + begin * m.row_stride;
  s.rows = end - begin;
  return s;
}

// Gives the pages of a file-mapped range back to the kernel: they are read-only
// private file pages, so a later access re-reads them from the page cache.
void ReleasePages(const void* data, int64_t bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(data) + bytes + page - 1) & ~(page - 1);
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);  // advisory: errors ignored
}

// Columns [begin, end) of `m` copied into an owned, contiguous matrix (begin
// and end on m's quantization blocks: checked by the shard plan).
absl::StatusOr<WeightMatrix> ColumnSlice(const WeightMatrix& m, int64_t begin, int64_t end,
                                         std::vector<std::shared_ptr<const void>>* keepalive) {
  ASSIGN_OR_RETURN(const int64_t offset, RowBytes(m.type, begin));
  ASSIGN_OR_RETURN(const int64_t bytes, RowBytes(m.type, end - begin));
  // 64-byte aligned rows and base for the SIMD kernels.
  const int64_t stride = (bytes + 63) / 64 * 64;
  std::shared_ptr<uint8_t> buffer(
      static_cast<uint8_t*>(::operator new[](static_cast<size_t>(m.rows * stride), std::align_val_t(64))),
      [](uint8_t* p) { ::operator delete[](p, std::align_val_t(64)); });
  uint8_t* base = buffer.get();
  for (int64_t r = 0; r < m.rows; ++r) {
    std::memcpy(base + r * stride, static_cast<const uint8_t*>(m.data) + r * m.row_stride + offset, bytes);
  }
  if (m.file_mapped) ReleasePages(m.data, m.rows * m.row_stride);
  keepalive->push_back(std::shared_ptr<const void>(buffer, base));
  WeightMatrix s;
  s.type = m.type;
  s.data = base;
  s.rows = m.rows;
  s.cols = end - begin;
  s.row_stride = stride;
  return s;
}

std::vector<float> VectorSlice(const std::vector<float>& v, int64_t begin, int64_t end) {
  if (v.empty()) return v;
  return std::vector<float>(v.begin() + begin, v.begin() + end);
}

}  // namespace

absl::StatusOr<ModelShard> PlanModelShard(const ModelConfig& c, const ModelWeights& w,
                                          const parallel::ParallelTopology& topology,
                                          const std::vector<int64_t>& layer_split) {
  ModelShard shard;
  shard.topology = topology;
  if (topology.tp_size < 1 || topology.pp_size < 1 || topology.tp_rank < 0 ||
      topology.tp_rank >= topology.tp_size || topology.pp_stage < 0 || topology.pp_stage >= topology.pp_size) {
    return absl::InvalidArgumentError(absl::StrCat("invalid parallel position: ", topology.ToString()));
  }
  parallel::TensorParallelShape shape;
  shape.n_heads = c.n_heads;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim;
  shape.d_ff = c.d_ff;
  shape.vocab_size = c.vocab_size;
  for (const LayerWeights& l : w.layers) {
    shape.attn_out_align = std::max(shape.attn_out_align, BlockSize(l.wo.type));
    shape.ffn_down_align = std::max(shape.ffn_down_align, BlockSize(l.w_down.type));
  }
  ASSIGN_OR_RETURN(shard.tp, parallel::PlanTensorParallelShard(shape, topology.tp_rank, topology.tp_size));
  ASSIGN_OR_RETURN(std::vector<parallel::LayerRange> stages,
                   parallel::PlanPipelineStages(c.n_layers, topology.pp_size, layer_split));
  shard.layers = stages[topology.pp_stage];
  return shard;
}

absl::Status ShardWeights(const ModelConfig& c, const ModelShard& shard, ModelWeights* w) {
  if (shard.whole_model()) return absl::OkStatus();
  const parallel::TensorParallelShard& tp = shard.tp;
  const bool split = tp.size > 1;
  const int64_t hd = c.head_dim;
  // The LM head first: with tied embeddings it is the embedding matrix.
  if (shard.topology.last_stage()) {
    w->output = RowSlice(w->output, tp.vocab_begin, tp.vocab_end);
  } else {
    w->output = WeightMatrix{};
    w->output_norm.clear();
  }
  if (shard.topology.first_stage()) {
    w->token_embd = RowSlice(w->token_embd, tp.vocab_begin, tp.vocab_end);
  } else {
    w->token_embd = WeightMatrix{};
  }
  std::vector<LayerWeights> kept(std::make_move_iterator(w->layers.begin() + shard.layers.begin),
                                 std::make_move_iterator(w->layers.begin() + shard.layers.end));
  w->layers = std::move(kept);
  if (!split) return absl::OkStatus();
  for (LayerWeights& l : w->layers) {
    l.wq = RowSlice(l.wq, tp.q_begin * hd, tp.q_end * hd);
    l.wk = RowSlice(l.wk, tp.kv_begin * hd, tp.kv_end * hd);
    l.wv = RowSlice(l.wv, tp.kv_begin * hd, tp.kv_end * hd);
    l.bq = VectorSlice(l.bq, tp.q_begin * hd, tp.q_end * hd);
    l.bk = VectorSlice(l.bk, tp.kv_begin * hd, tp.kv_end * hd);
    l.bv = VectorSlice(l.bv, tp.kv_begin * hd, tp.kv_end * hd);
    ASSIGN_OR_RETURN(l.wo, ColumnSlice(l.wo, tp.q_begin * hd, tp.q_end * hd, &w->keepalive));
    l.w_gate = RowSlice(l.w_gate, tp.ff_begin, tp.ff_end);
    l.w_up = RowSlice(l.w_up, tp.ff_begin, tp.ff_end);
    ASSIGN_OR_RETURN(l.w_down, ColumnSlice(l.w_down, tp.ff_begin, tp.ff_end, &w->keepalive));
  }
  return absl::OkStatus();
}

int64_t WeightBytes(const ModelWeights& w) {
  auto matrix = [](const WeightMatrix& m) { return m.data == nullptr ? 0 : m.rows * m.row_stride; };
  int64_t bytes = matrix(w.token_embd);
  if (w.output.data != w.token_embd.data) bytes += matrix(w.output);
  bytes += static_cast<int64_t>(w.output_norm.size() * sizeof(float));
  for (const LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) bytes += matrix(*m);
    for (const std::vector<float>* v : {&l.attn_norm, &l.ffn_norm, &l.bq, &l.bk, &l.bv}) {
      bytes += static_cast<int64_t>(v->size() * sizeof(float));
    }
  }
  return bytes;
}

}  // namespace strata
