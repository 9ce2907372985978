// The part of a model one worker process of a TP x PP replica holds, and the
// weight slicing that gives it only that part.
//
// LoadModel maps the whole file; ShardWeights then keeps views of the
// column-parallel slices (contiguous rows, so only their pages are ever read),
// copies the row-parallel column slices (attention output, MLP down) into
// owned memory, drops the layers of other stages, and returns the file pages
// the copies read to the kernel, so resident weight memory is about 1/(TP*PP)
// of the file (measured in docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "parallel/parallel_groups.h"
#include "parallel/pipeline_stages.h"
#include "parallel/tensor_parallel_shard.h"
#include "worker/model/model_weights.h"

namespace strata {

struct ModelShard {
  parallel::ParallelTopology topology;
  parallel::TensorParallelShard tp;   // the whole model when tp_size = 1
  parallel::LayerRange layers;        // this stage's layers

  bool whole_model() const { return topology.tp_size == 1 && topology.pp_size == 1; }
  int64_t n_heads() const { return tp.n_heads(); }
  int64_t n_kv_heads() const { return tp.n_kv_heads(); }
  int64_t d_ff() const { return tp.d_ff(); }
  int64_t n_layers() const { return layers.size(); }
};

// The shard `topology` gives on a model with `config` whose full weights are
// `weights` (their quantization blocks constrain the split). `layer_split`:
// layers per stage, empty = even. INVALID_ARGUMENT naming what does not split.
absl::StatusOr<ModelShard> PlanModelShard(const ModelConfig& config, const ModelWeights& weights,
                                          const parallel::ParallelTopology& topology,
                                          const std::vector<int64_t>& layer_split);

// Replaces the full `weights` (as LoadModel returned them: views into
// read-only file mappings) by the shard's: layers [layers.begin, layers.end)
// renumbered from 0, sliced matrices and biases, the embedding only on the
// first stage, the LM head only on the last. A no-op for the whole model.
absl::Status ShardWeights(const ModelConfig& config, const ModelShard& shard, ModelWeights* weights);

// Bytes of the weights a forward pass reads: every matrix's rows x row
// stride (a tied LM head counted once) plus the f32 vectors. What a rank
// keeps resident once its pages have been touched.
int64_t WeightBytes(const ModelWeights& weights);

}  // namespace strata
