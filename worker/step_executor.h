// The worker's step executor: holds the per-sequence state the coordinator's
// StepPlans build up (token ids, block table, computed-token count, sampler),
// applies each plan as the diff strata/v1/worker.proto specifies, runs ONE
// forward pass over every scheduled sequence and samples for the sequences
// whose computed tokens reached their known tokens.
//
//   StepPlan ─► validate (no state touched) ─► drop finished/preempted ─► create new
//            ─► append running deltas ─► one ForwardBatch ─► Forward ─► sample ─► StepResult
//
// Error policy (StepResult.error; code 3 INVALID_ARGUMENT unless noted):
//
//   whole step (error.seq_ids empty, nothing of the plan is applied):
//     - step_id not the expected one (1 after Create/Reset, then consecutive);
//       the expected id does not advance, so a corrected plan is accepted.
//     - Forward failing (13 INTERNAL): per-sequence state is then unknown
//       (tokens were appended, KV partly written); the coordinator tears the
//       replica down and the worker re-attaches with Reset().
//   per sequence (error.seq_ids lists them, the rest of the plan runs):
//     - anything wrong with one NewSequence / RunningSequence entry: an id
//       already held or repeated in the plan, an unknown running id, an id in
//       both new_sequences and running_sequences, empty token_ids, token ids
//       outside the vocabulary, num_prompt_tokens > token count, invalid
//       sampling params, block id 0 or >= capacity or twice in one table
//       (blocks shared between sequences are not checked: prefix-cache hits
//       share them legitimately), num_computed_tokens not a
//       multiple of block_size or beyond the known tokens, computed+scheduled
//       beyond the known tokens / the block table / the context length.
//     - the sampler failing for one sequence (13 INTERNAL, all logits NaN).
//     A sequence named in a per-sequence error is dropped (as if finished):
//     the coordinator fails that request; a later plan naming it again gets
//     "not held". Several failing sequences share one StepError: the first
//     error's code, the messages joined by "; ", every seq id listed.
//   finished_seq_ids / preempted_seq_ids naming sequences the worker does not
//   hold are ignored (dropping is idempotent; a sequence dropped after a
//   per-sequence error may still be reported finished by the coordinator).
//
// A running sequence with num_scheduled_tokens = 0 only has its deltas
// appended; it samples only in a step that computed tokens for it.
//
// Tensor/pipeline parallel (config.topology not 1 x 1): the executor holds
// only its shard of the model and of the KV cache (model_shard.h). Every rank
// applies every plan (so all hold the same per-sequence state) and runs the
// same forward pass; only the sampling rank (last stage, tp rank 0) samples
// and fills StepResult.tokens. Connect() builds the communicators from the
// replica's rendezvous before the first plan; a plan executed unconnected is a
// whole-step FAILED_PRECONDITION; Reset() drops them (a peer went away, so
// they are unusable).
//
// Threading: one thread (the worker's step thread) calls Execute, Connect and
// Reset; the accessors are immutable after Create and may be read from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/format/model_fingerprint.h"
#include "kernels/cpu/thread_pool.h"
#include "parallel/communicator.h"
#include "parallel/parallel_groups.h"
#include "strata/v1/worker.pb.h"
#include "worker/backend/backend.h"
#include "worker/backend/backend_factory.h"
#include "worker/backend/device_spec.h"
#include "worker/kv_cache.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"
#include "worker/sampler.h"

namespace strata {

// One communicator a rank needs: its key prefix in the rendezvous store, its
// rank and the group's size.
struct CommunicatorSpec {
  std::string key_prefix;  // "<rendezvous>/tp/stage0", "<rendezvous>/pp/lane1"
  int rank = 0;
  int size = 1;
  std::string label;       // for error messages
};
using CommunicatorFactory =
    std::function<absl::StatusOr<std::unique_ptr<parallel::Communicator>>(const CommunicatorSpec&)>;

struct StepExecutorConfig {
  std::string model_path;
  // Served model name for ModelIdentity; empty = the file stem (directory
  // name for a Hugging Face checkpoint).
  std::string model_name;
  int threads = 1;
  // Where the model runs (--device): cpu, or cuda:N (CreateBackend), and how
  // (--weight-dtype, --cuda-graphs).
  DeviceSpec device;
  BackendOptions backend;
  // Tests only: builds the backend instead of CreateBackend(device, ...)
  // (e.g. CudaBackend on the host harness). Gets the executor's thread pool.
  std::function<absl::StatusOr<std::unique_ptr<Backend>>(ThreadPool*)> make_backend;
  // Longest sequence the worker accepts; 0 = min(model context, 4096).
  int64_t max_context = 0;
  int32_t block_size = 16;
  KvDtype kv_dtype = KvDtype::kF16;
  // KV pool size in blocks including the null block 0. 0 = derive it from
  // kv_cache_bytes / KvCache::BytesPerBlock. Either way it must hold one
  // max_context sequence plus the null block. Both 0 on a CUDA device: size
  // the pool from the device's memory (SizesKvFromDevice, PlanKvFromDevice).
  int32_t kv_blocks = 0;
  int64_t kv_cache_bytes = 0;
  // Fraction of the device's total memory this worker may use (weights,
  // activations and KV together) when the pool is sized from the device;
  // (0, 1], like vLLM's gpu_memory_utilization. Ignored otherwise.
  double gpu_memory_utilization = 0.9;
  // This process's place in its replica, and the layers per pipeline stage
  // (empty: even split).
  parallel::ParallelTopology topology;
  std::vector<int64_t> layer_split;
  // Builds the tp / pp communicators in Connect (required when the topology
  // is not 1 x 1).
  CommunicatorFactory make_communicator;
  // Bound of a step's wait on a device stream with collectives in it
  // (Backend::WatchCollectives): after it the communicators are aborted and
  // the step fails (--collective-timeout-s).
  absl::Duration collective_timeout = absl::Seconds(60);
};

// What Register reports about the model (ModelIdentity in worker.proto).
struct ModelIdentityInfo {
  std::string name;
  std::string source;       // the model path as given
  std::string fingerprint;  // ModelFingerprint(source)
  int64_t vocab_size = 0;
  int64_t num_layers = 0;
  int64_t context_length = 0;  // the worker's max_context, not the model's
};


// The KV pool size in blocks (incl. null block 0) and the max context that
// `config` asks for on a model with `model`'s shape, or INVALID_ARGUMENT
// naming the config field (max_context, block_size, kv_blocks,
// kv_cache_bytes) when they do not fit.
struct KvPlan {
  int64_t max_context = 0;
  int32_t num_blocks = 0;
  int64_t bytes_per_block = 0;
  int32_t blocks_per_max_sequence = 0;
  // How a device-sized pool was computed (PlanKvFromDevice), for the log;
  // empty otherwise.
  std::string device_breakdown;
};
absl::StatusOr<KvPlan> PlanKv(const StepExecutorConfig& config, const ModelConfig& model);
// The same for a shard: its layers and KV heads only.
absl::StatusOr<KvPlan> PlanKv(const StepExecutorConfig& config, const ModelConfig& model, const ModelShard& shard);
// The block shape only (max_context, bytes_per_block, blocks_per_max_sequence;
// num_blocks 0): PlanKv's checks of max_context and block_size, without a
// budget. What can be checked before the device is measured.
absl::StatusOr<KvPlan> PlanKvShape(const StepExecutorConfig& config, const ModelConfig& model,
                                   const ModelShard& shard);

// ---- KV pool sized from device memory (CUDA, no kv_blocks / kv_cache_bytes) ----
//
// StepExecutor::Create measures Backend::MemoryInfo() before the weights are
// uploaded and the free bytes again after PrepareWeights, then:
//
//   weights  = max(BackendWeights.device_bytes, free before - free after)
//   reserve  = ActivationReserveBytes(...)          (estimate, see below)
//   kv bytes = PlanDeviceKvBytes(total, free before, weights, reserve,
//                                gpu_memory_utilization, one max-context sequence)
//   blocks   = min(kv bytes / bytes_per_block, INT32_MAX)   (incl. the null block)

// True when `config` asks for a device-sized pool: a CUDA device and neither
// kv_blocks nor kv_cache_bytes set.
bool SizesKvFromDevice(const StepExecutorConfig& config);

// The device memory the worker needs besides weights and KV, estimated as:
//   - LlamaModel's scratch for a step of `step_tokens` tokens, `logit_rows`
//     of which are sampled: per token (2 d_model + 2 q_dim + 2 kv_dim +
//     2 d_ff) f32 (x, xn, q, att, k, v, gate, up), plus the logits
//     (R x vocab on one rank; R x vocab_padded and tp x R x vocab_padded
//     gathered with tensor parallelism) and the step's int32 inputs;
//   - kBackendWorkspaceBytes for the backend's workspaces (GEMM, split-KV
//     attention partials, allocator rounding);
//   - kCommunicatorReserveBytes per NCCL communicator this rank builds later
//     (tp > 1, pp > 1): NCCL's own buffers are allocated after the KV pool.
// Create uses step_tokens = max_context (the largest prompt one step can
// prefill; the coordinator's --max-batched-tokens is normally smaller) and
// logit_rows = min(step_tokens, kReserveLogitRows).
inline constexpr int64_t kBackendWorkspaceBytes = int64_t{256} << 20;
inline constexpr int64_t kCommunicatorReserveBytes = int64_t{256} << 20;
inline constexpr int64_t kReserveLogitRows = 256;
int64_t ActivationReserveBytes(const ModelConfig& model, const ModelShard& shard, int64_t step_tokens,
                               int64_t logit_rows);

// What Create measured on the device.
struct DeviceKvMeasurement {
  int64_t total_bytes = 0;
  int64_t free_bytes_before_weights = 0;
  int64_t free_bytes_after_weights = 0;
  int64_t weight_device_bytes = 0;       // BackendWeights.device_bytes
  int64_t activation_reserve_bytes = 0;  // ActivationReserveBytes
};
// The device-sized plan (pure: numbers in, blocks out). Errors name the
// config field: "gpu_memory_utilization 0.95: ..." (RESOURCE_EXHAUSTED with
// PlanDeviceKvBytes's breakdown when one max_context sequence plus the null
// block does not fit; INVALID_ARGUMENT for a utilization outside (0, 1]),
// or PlanKvShape's max_context / block_size errors.
absl::StatusOr<KvPlan> PlanKvFromDevice(const StepExecutorConfig& config, const ModelConfig& model,
                                        const ModelShard& shard, const DeviceKvMeasurement& measured);

class StepExecutor {
 public:
  // Loads config.model_path and sizes the KV pool (from config, or from the
  // device's memory, see PlanKvFromDevice).
  static absl::StatusOr<std::unique_ptr<StepExecutor>> Create(const StepExecutorConfig& config);
  ~StepExecutor();
  // Same with an already loaded model (config.model_path is only reported).
  static absl::StatusOr<std::unique_ptr<StepExecutor>> Create(const StepExecutorConfig& config,
                                                              std::unique_ptr<LoadedModel> model);

  StepExecutor(const StepExecutor&) = delete;
  StepExecutor& operator=(const StepExecutor&) = delete;

  // Applies `plan` and runs it; never crashes on bad input (see the error
  // policy above). execute_micros is always filled.
  strata::worker::v1::StepResult Execute(const strata::worker::v1::StepPlan& plan);

  // Back to the state after Create: no sequences, next step_id 1, KV pool
  // zeroed (reallocated), no communicators. Weights stay loaded. For a
  // worker that re-attaches.
  absl::Status Reset();

  // Builds this rank's communicators under `rendezvous` (Registered's
  // collective_rendezvous); waits for the other ranks up to the factory's
  // timeout. A no-op for a 1 x 1 topology. Each communicator is bound to the
  // backend's native stream (Communicator::BindStream): device communicators
  // (NCCL) then order themselves with the model's kernels without host
  // synchronisation; a host-buffer communicator on a device backend is
  // FAILED_PRECONDITION naming it.
  absl::Status Connect(const std::string& rendezvous);
  bool connected() const { return connected_; }
  const ModelShard& shard() const { return runner_->shard(); }

  // KV blocks in the pool including the null block 0.
  int32_t kv_capacity_blocks() const { return kv_plan_.num_blocks; }
  const KvPlan& kv_plan() const { return kv_plan_; }
  int32_t block_size() const { return config_.block_size; }
  int64_t max_context() const { return kv_plan_.max_context; }
  const ModelIdentityInfo& model_identity() const { return identity_; }
  const ModelConfig& model_config() const { return model_->config; }
  // This rank's (sharded) weights.
  const ModelWeights& weights() const { return model_->weights; }
  // Sequences currently held (for tests and logs).
  size_t num_sequences() const { return seqs_.size(); }
  // The step_id the next plan must carry.
  uint64_t next_step_id() const { return next_step_id_; }

 private:
  // Per-sequence state built by the plans.
  struct Sequence {
    std::vector<int32_t> tokens;     // every known token
    std::vector<int32_t> block_ids;  // block table
    int64_t computed = 0;            // tokens whose KV is in the blocks
    std::unique_ptr<Sampler> sampler;
    bool logprobs = false;
    int64_t num_prompt = 0;
    int64_t min_tokens = 0;                 // suppressed tokens are never picked before this many
    std::vector<int32_t> suppressed;        // generated tokens (vLLM's min_tokens)
  };
  // One sequence's work in the step being executed.
  struct Scheduled {
    uint64_t seq_id = 0;
    Sequence* seq = nullptr;
    int64_t num_tokens = 0;
  };
  StepExecutor() = default;
  // Unwatches, unbinds and destroys the tp/pp communicators; not connected.
  void DropCommunicators();
  absl::Status CheckTokens(const google::protobuf::RepeatedField<int32_t>& ids,
                           const char* field) const;
  absl::Status CheckBlocks(const google::protobuf::RepeatedField<uint32_t>& ids,
                           const char* field) const;
  absl::Status CheckSpan(int64_t known_tokens, int64_t computed, int64_t scheduled,
                         int64_t num_blocks) const;
  absl::Status CheckNew(const strata::worker::v1::NewSequence& n) const;
  absl::Status CheckRunning(const strata::worker::v1::RunningSequence& r,
                            const Sequence& held) const;
  absl::StatusOr<Sequence> MakeSequence(const strata::worker::v1::NewSequence& n) const;

  StepExecutorConfig config_;
  KvPlan kv_plan_;
  ModelIdentityInfo identity_;
  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Backend> backend_;  // outlives runner_ and kv_ (their buffers)
  std::unique_ptr<LlamaModel> runner_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<parallel::Communicator> tp_comm_, pp_comm_;
  bool connected_ = false;

  std::unordered_map<uint64_t, Sequence> seqs_;
  uint64_t next_step_id_ = 1;
  // Reused across steps.
  ForwardBatch batch_;
  std::vector<float> logits_;
  std::vector<RowSamplingKnobs> knobs_;   // per sampled row, when the backend samples
  std::vector<RowSample> backend_samples_;
};

// The proto's SamplingParams as the sampler's (seed always set).
SamplingParams FromProto(const strata::worker::v1::SamplingParams& p);

}  // namespace strata
