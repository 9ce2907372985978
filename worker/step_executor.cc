#include "worker/step_executor.h"

#include "worker/backend/backend_factory.h"
#include "worker/backend/device_memory_plan.h"
#include "worker/communicator_watch.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace strata {

namespace wire = ::strata::worker::v1;

namespace {

// Collects the per-sequence errors of one step into a single StepError.
class StepErrors {
 public:
  void Add(uint64_t seq_id, const absl::Status& status) {
    if (bad_.insert(seq_id).second) seq_ids_.push_back(seq_id);
    if (messages_.empty()) code_ = static_cast<int>(status.code());
    messages_.push_back(std::string(status.message()));
  }
  bool Bad(uint64_t seq_id) const { return bad_.count(seq_id) > 0; }
  bool empty() const { return messages_.empty(); }
  void Fill(wire::StepError* e) const {
    e->set_code(code_);
    e->set_message(absl::StrJoin(messages_, "; "));
    for (uint64_t id : seq_ids_) e->add_seq_ids(id);
  }

 private:
  int code_ = 0;
  std::vector<std::string> messages_;
  std::vector<uint64_t> seq_ids_;
  std::unordered_set<uint64_t> bad_;
};

void WholeStepError(absl::StatusCode code, const std::string& message, wire::StepResult* r) {
  r->mutable_error()->set_code(static_cast<int>(code));
  r->mutable_error()->set_message(message);
  r->clear_tokens();
}

}  // namespace

absl::StatusOr<KvPlan> PlanKv(const StepExecutorConfig& config, const ModelConfig& model) {
  ModelShard whole;
  whole.tp.kv_end = model.n_kv_heads;
  whole.layers = {0, model.n_layers};
  return PlanKv(config, model, whole);
}

absl::StatusOr<KvPlan> PlanKvShape(const StepExecutorConfig& config, const ModelConfig& model,
                                   const ModelShard& shard) {
  if (config.block_size < 1 || config.block_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_size ", config.block_size, " is outside [1, 1024]"));
  }
  if (config.max_context < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_context ", config.max_context, " is negative"));
  }
  KvPlan plan;
  plan.max_context =
      config.max_context > 0 ? config.max_context : std::min<int64_t>(model.context_length, 4096);
  if (plan.max_context > model.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("max_context ", plan.max_context,
                                                   " exceeds the model's context length ",
                                                   model.context_length));
  }
  KvCacheConfig kc;
  kc.n_layers = shard.n_layers();
  kc.n_kv_heads = shard.n_kv_heads();
  kc.head_dim = model.head_dim;
  kc.block_size = config.block_size;
  kc.dtype = config.kv_dtype;
  plan.bytes_per_block = KvCache::BytesPerBlock(kc);
  if (plan.bytes_per_block <= 0) return absl::InvalidArgumentError("model has an empty KV shape");
  plan.blocks_per_max_sequence =
      static_cast<int32_t>((plan.max_context + config.block_size - 1) / config.block_size);
  return plan;
}

namespace {

// "one sequence of max_context N tokens needs ..." for a shape plan.
std::string NeedText(const KvPlan& plan, int32_t block_size) {
  const int64_t need = int64_t{plan.blocks_per_max_sequence} + 1;
  return absl::StrCat("one sequence of max_context ", plan.max_context, " tokens needs ",
                      plan.blocks_per_max_sequence, " blocks of ", block_size,
                      " tokens plus the null block (", need, " blocks of ", plan.bytes_per_block,
                      " bytes = ", need * plan.bytes_per_block, " bytes)");
}

}  // namespace

absl::StatusOr<KvPlan> PlanKv(const StepExecutorConfig& config, const ModelConfig& model, const ModelShard& shard) {
  ASSIGN_OR_RETURN(KvPlan plan, PlanKvShape(config, model, shard));
  const int64_t need = int64_t{plan.blocks_per_max_sequence} + 1;
  if (config.kv_blocks < 0) {
    return absl::InvalidArgumentError(absl::StrCat("kv_blocks ", config.kv_blocks, " is negative"));
  }
  if (config.kv_blocks > 0) {
    if (config.kv_blocks < need) {
      return absl::InvalidArgumentError(
          absl::StrCat("kv_blocks ", config.kv_blocks, " is too small: ", NeedText(plan, config.block_size)));
    }
    plan.num_blocks = config.kv_blocks;
  } else {
    if (config.kv_cache_bytes <= 0) {
      return absl::InvalidArgumentError("kv_blocks or kv_cache_bytes must be positive");
    }
    const int64_t blocks = std::min<int64_t>(config.kv_cache_bytes / plan.bytes_per_block,
                                             std::numeric_limits<int32_t>::max());
    if (blocks < need) {
      return absl::InvalidArgumentError(absl::StrCat("kv_cache_bytes ", config.kv_cache_bytes, " holds only ",
                                                     blocks, " blocks: ", NeedText(plan, config.block_size)));
    }
    plan.num_blocks = static_cast<int32_t>(blocks);
  }
  return plan;
}

bool SizesKvFromDevice(const StepExecutorConfig& config) {
  return config.device.kind == DeviceKind::kCuda && config.kv_blocks == 0 && config.kv_cache_bytes == 0;
}

int64_t ActivationReserveBytes(const ModelConfig& model, const ModelShard& shard, int64_t step_tokens,
                               int64_t logit_rows) {
  const int64_t f = sizeof(float);
  const int64_t T = std::max<int64_t>(step_tokens, 0);
  const int64_t R = std::clamp<int64_t>(logit_rows, 0, T);
  const int64_t q_dim = shard.n_heads() * model.head_dim;
  const int64_t kv_dim = shard.n_kv_heads() * model.head_dim;
  // x, xn, q, att, k, v, gate, up (LlamaModel::ReserveScratch).
  int64_t bytes = T * (2 * model.d_model + 2 * q_dim + 2 * kv_dim + 2 * shard.d_ff()) * f;
  if (shard.topology.last_stage()) {
    const int tp = shard.topology.tp_size;
    bytes += tp > 1 ? (1 + tp) * R * shard.tp.vocab_padded * f : R * model.vocab_size * f;
  }
  // tokens, positions, token_seq (int32 each); the block tables are small next to them.
  bytes += 3 * T * int64_t{sizeof(int32_t)};
  bytes += kBackendWorkspaceBytes;
  const int communicators = (shard.topology.tp_size > 1 ? 1 : 0) + (shard.topology.pp_size > 1 ? 1 : 0);
  bytes += communicators * kCommunicatorReserveBytes;
  return bytes;
}

absl::StatusOr<KvPlan> PlanKvFromDevice(const StepExecutorConfig& config, const ModelConfig& model,
                                        const ModelShard& shard, const DeviceKvMeasurement& measured) {
  ASSIGN_OR_RETURN(KvPlan plan, PlanKvShape(config, model, shard));
  const std::string flag = absl::StrCat("gpu_memory_utilization ", config.gpu_memory_utilization);
  const int64_t dropped = measured.free_bytes_before_weights - measured.free_bytes_after_weights;
  DeviceMemoryPlanInput in;
  in.total_bytes = measured.total_bytes;
  in.free_bytes_before_load = measured.free_bytes_before_weights;
  in.weight_bytes = std::max<int64_t>(measured.weight_device_bytes, dropped);
  in.activation_reserve_bytes = measured.activation_reserve_bytes;
  in.utilization = config.gpu_memory_utilization;
  in.min_kv_bytes = (int64_t{plan.blocks_per_max_sequence} + 1) * plan.bytes_per_block;
  absl::StatusOr<int64_t> kv_bytes = PlanDeviceKvBytes(in);
  if (!kv_bytes.ok()) {
    std::string message = absl::StrCat(flag, ": ", kv_bytes.status().message());
    if (kv_bytes.status().code() == absl::StatusCode::kResourceExhausted) {
      absl::StrAppend(&message, " (", NeedText(plan, config.block_size), ")");
    }
    return absl::Status(kv_bytes.status().code(), message);
  }
  plan.num_blocks = static_cast<int32_t>(
      std::min<int64_t>(*kv_bytes / plan.bytes_per_block, std::numeric_limits<int32_t>::max()));
  const auto mib = [](int64_t b) { return absl::StrFormat("%.0f MiB", static_cast<double>(b) / (1 << 20)); };
  plan.device_breakdown = absl::StrCat(
      "device ", mib(in.total_bytes), " x ", config.gpu_memory_utilization, " - others ",
      mib(in.total_bytes - in.free_bytes_before_load), " - weights ", mib(in.weight_bytes), " - reserve ",
      mib(in.activation_reserve_bytes), " = ", mib(*kv_bytes), " of KV");
  return plan;
}

SamplingParams FromProto(const wire::SamplingParams& p) {
  SamplingParams s;
  s.temperature = p.temperature();
  s.top_k = p.top_k();
  s.top_p = p.top_p();
  s.min_p = p.min_p();
  s.repetition_penalty = p.repetition_penalty();
  s.presence_penalty = p.presence_penalty();
  s.frequency_penalty = p.frequency_penalty();
  s.penalty_last_n = p.penalty_last_n();
  s.seed = p.seed();
  return s;
}

absl::StatusOr<std::unique_ptr<StepExecutor>> StepExecutor::Create(const StepExecutorConfig& config) {
  auto loaded = LoadModel(config.model_path);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("loading model ", config.model_path, ": ", loaded.status().message()));
  }
  return Create(config, *std::move(loaded));
}

absl::StatusOr<std::unique_ptr<StepExecutor>> StepExecutor::Create(const StepExecutorConfig& config,
                                                                   std::unique_ptr<LoadedModel> model) {
  if (model == nullptr) return absl::InvalidArgumentError("no model");
  if (config.threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threads ", config.threads, " must be >= 1"));
  }
  if (config.topology.world_size() > 1 && !config.make_communicator) {
    return absl::InvalidArgumentError(absl::StrCat("a ", config.topology.ToString(),
                                                   " worker needs a communicator factory"));
  }
  auto e = std::unique_ptr<StepExecutor>(new StepExecutor());
  e->config_ = config;
  e->model_ = std::move(model);
  ASSIGN_OR_RETURN(ModelShard shard, PlanModelShard(e->model_->config, e->model_->weights, config.topology,
                                                    config.layer_split));
  RETURN_IF_ERROR(ShardWeights(e->model_->config, shard, &e->model_->weights));
  // A configured pool is checked before anything is uploaded; a device-sized
  // one (CUDA, no kv_blocks / kv_cache_bytes) checks its shape now and is sized
  // once the weights are on the device.
  const bool from_device = SizesKvFromDevice(config);
  if (from_device) {
    ASSIGN_OR_RETURN(e->kv_plan_, PlanKvShape(config, e->model_->config, shard));
  } else {
    ASSIGN_OR_RETURN(e->kv_plan_, PlanKv(config, e->model_->config, shard));
  }
  ASSIGN_OR_RETURN(e->pool_, ThreadPool::Create(config.threads));
  if (config.make_backend) {
    ASSIGN_OR_RETURN(e->backend_, config.make_backend(e->pool_.get()));
  } else {
    ASSIGN_OR_RETURN(e->backend_, CreateBackend(config.device, e->pool_.get(), config.backend));
  }
  DeviceMemoryInfo before;
  if (from_device) {
    ASSIGN_OR_RETURN(before, e->backend_->MemoryInfo());
  }
  ASSIGN_OR_RETURN(e->runner_, LlamaModel::Create(&e->model_->config, &e->model_->weights, shard, e->backend_.get()));
  if (from_device) {
    ASSIGN_OR_RETURN(const DeviceMemoryInfo after, e->backend_->MemoryInfo());
    DeviceKvMeasurement m;
    m.total_bytes = before.total_bytes;
    m.free_bytes_before_weights = before.free_bytes;
    m.free_bytes_after_weights = after.free_bytes;
    m.weight_device_bytes = e->runner_->device_weight_bytes();
    m.activation_reserve_bytes =
        ActivationReserveBytes(e->model_->config, shard, e->kv_plan_.max_context,
                               std::min<int64_t>(e->kv_plan_.max_context, kReserveLogitRows));
    ASSIGN_OR_RETURN(e->kv_plan_, PlanKvFromDevice(config, e->model_->config, shard, m));
  }
  RETURN_IF_ERROR(e->Reset());

  ModelIdentityInfo& id = e->identity_;
  id.source = config.model_path;
  id.name = config.model_name;
  if (id.name.empty()) {
    std::filesystem::path p(config.model_path);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" -> "dir"
    id.name = std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
  }
  ASSIGN_OR_RETURN(id.fingerprint, ModelFingerprint(config.model_path));
  id.vocab_size = e->model_->config.vocab_size;
  id.num_layers = e->model_->config.n_layers;  // the whole model's
  id.context_length = e->kv_plan_.max_context;
  return e;
}

StepExecutor::~StepExecutor() {
  // The watch names the communicators, which go first (member order).
  if (backend_ != nullptr) backend_->WatchCollectives({});
}

void StepExecutor::DropCommunicators() {
  backend_->WatchCollectives({});
  runner_->BindGroups({});
  tp_comm_.reset();
  pp_comm_.reset();
  connected_ = false;
}

absl::Status StepExecutor::Connect(const std::string& rendezvous) {
  const parallel::ParallelTopology& topo = config_.topology;
  if (topo.world_size() == 1) {
    connected_ = true;
    return absl::OkStatus();
  }
  DropCommunicators();
  if (topo.tp_size > 1) {
    CommunicatorSpec spec;
    spec.key_prefix = absl::StrCat(rendezvous, "/tp/stage", topo.pp_stage);
    spec.rank = topo.tp_rank;
    spec.size = topo.tp_size;
    spec.label = absl::StrCat("tp group ", spec.key_prefix);
    ASSIGN_OR_RETURN(tp_comm_, config_.make_communicator(spec));
  }
  if (topo.pp_size > 1) {
    CommunicatorSpec spec;
    spec.key_prefix = absl::StrCat(rendezvous, "/pp/lane", topo.tp_rank);
    spec.rank = topo.pp_stage;
    spec.size = topo.pp_size;
    spec.label = absl::StrCat("pp group ", spec.key_prefix);
    ASSIGN_OR_RETURN(pp_comm_, config_.make_communicator(spec));
  }
  // The model passes backend buffers (device pointers on CUDA) to the
  // communicators; bound to the backend's stream, NCCL orders itself with the
  // model's kernels on the device.
  void* stream = backend_->native_stream();
  for (parallel::Communicator* comm : {tp_comm_.get(), pp_comm_.get()}) {
    if (comm != nullptr) RETURN_IF_ERROR(comm->BindStream(stream));
  }
  runner_->BindGroups({tp_comm_.get(), pp_comm_.get()});
  backend_->WatchCollectives(WatchCommunicators({tp_comm_.get(), pp_comm_.get()}, config_.collective_timeout));
  connected_ = true;
  return absl::OkStatus();
}

absl::Status StepExecutor::Reset() {
  seqs_.clear();
  next_step_id_ = 1;
  if (config_.topology.world_size() > 1) DropCommunicators();
  kv_.reset();  // free before allocating the fresh pool
  KvCacheConfig kc;
  kc.n_layers = runner_->shard().n_layers();
  kc.n_kv_heads = runner_->shard().n_kv_heads();
  kc.head_dim = model_->config.head_dim;
  kc.block_size = config_.block_size;
  kc.dtype = config_.kv_dtype;
  kc.num_blocks = kv_plan_.num_blocks;
  ASSIGN_OR_RETURN(kv_, KvCache::Create(kc, backend_.get()));
  return absl::OkStatus();
}

absl::Status StepExecutor::CheckTokens(const google::protobuf::RepeatedField<int32_t>& ids,
                                       const char* field) const {
  const int64_t vocab = model_->config.vocab_size;
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] = ", ids[i],
                                                     " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status StepExecutor::CheckBlocks(const google::protobuf::RepeatedField<uint32_t>& ids,
                                       const char* field) const {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] = 0 is the null block, never part of a table"));
    }
    if (ids[i] >= static_cast<uint32_t>(kv_plan_.num_blocks)) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] = ", ids[i],
                                                     " is beyond the KV capacity (valid ids 1..",
                                                     kv_plan_.num_blocks - 1, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status StepExecutor::CheckSpan(int64_t known, int64_t computed, int64_t scheduled,
                                     int64_t num_blocks) const {
  const int64_t end = computed + scheduled;
  if (known > kv_plan_.max_context) {
    return absl::InvalidArgumentError(absl::StrCat("token count ", known,
                                                   " exceeds the worker's context length ",
                                                   kv_plan_.max_context));
  }
  if (num_blocks > kv_plan_.blocks_per_max_sequence) {
    return absl::InvalidArgumentError(absl::StrCat("block table of ", num_blocks,
                                                   " blocks exceeds the ", kv_plan_.blocks_per_max_sequence,
                                                   " a sequence of the context length needs"));
  }
  if (end > known) {
    return absl::InvalidArgumentError(absl::StrCat("num_scheduled_tokens ", scheduled,
                                                   " from num_computed_tokens ", computed,
                                                   " goes beyond the ", known, " known tokens"));
  }
  if (end > num_blocks * config_.block_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_scheduled_tokens ", scheduled, " from num_computed_tokens ", computed,
        " goes beyond the block table (", num_blocks, " blocks of ", config_.block_size, " tokens)"));
  }
  return absl::OkStatus();
}

absl::Status StepExecutor::CheckNew(const wire::NewSequence& n) const {
  if (n.token_ids().empty()) return absl::InvalidArgumentError("token_ids is empty");
  RETURN_IF_ERROR(CheckTokens(n.token_ids(), "token_ids"));
  if (n.num_prompt_tokens() > static_cast<uint32_t>(n.token_ids_size())) {
    return absl::InvalidArgumentError(absl::StrCat("num_prompt_tokens ", n.num_prompt_tokens(),
                                                   " exceeds the ", n.token_ids_size(), " token_ids"));
  }
  if (absl::Status s = ValidateSamplingParams(FromProto(n.sampling())); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: ", s.message()));
  }
  RETURN_IF_ERROR(CheckBlocks(n.block_ids(), "block_ids"));
  std::unordered_set<uint32_t> table;
  for (int i = 0; i < n.block_ids_size(); ++i) {
    if (!table.insert(n.block_ids(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("block_ids[", i, "] = ", n.block_ids(i), " appears twice in the block table"));
    }
  }
  if (n.num_computed_tokens() % static_cast<uint32_t>(config_.block_size) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_computed_tokens ", n.num_computed_tokens(),
                                                   " is not a multiple of block_size ",
                                                   config_.block_size));
  }
  if (n.num_computed_tokens() > static_cast<uint32_t>(n.token_ids_size())) {
    return absl::InvalidArgumentError(absl::StrCat("num_computed_tokens ", n.num_computed_tokens(),
                                                   " exceeds the ", n.token_ids_size(), " token_ids"));
  }
  return CheckSpan(n.token_ids_size(), n.num_computed_tokens(), n.num_scheduled_tokens(),
                   n.block_ids_size());
}

absl::Status StepExecutor::CheckRunning(const wire::RunningSequence& r, const Sequence& held) const {
  RETURN_IF_ERROR(CheckTokens(r.new_token_ids(), "new_token_ids"));
  RETURN_IF_ERROR(CheckBlocks(r.new_block_ids(), "new_block_ids"));
  if (!r.new_block_ids().empty()) {
    std::unordered_set<uint32_t> table(held.block_ids.begin(), held.block_ids.end());
    for (int i = 0; i < r.new_block_ids_size(); ++i) {
      if (!table.insert(r.new_block_ids(i)).second) {
        return absl::InvalidArgumentError(absl::StrCat("new_block_ids[", i, "] = ", r.new_block_ids(i),
                                                       " is already in the block table"));
      }
    }
  }
  return CheckSpan(static_cast<int64_t>(held.tokens.size()) + r.new_token_ids_size(), held.computed,
                   r.num_scheduled_tokens(),
                   static_cast<int64_t>(held.block_ids.size()) + r.new_block_ids_size());
}

absl::StatusOr<StepExecutor::Sequence> StepExecutor::MakeSequence(const wire::NewSequence& n) const {
  Sequence s;
  s.tokens.assign(n.token_ids().begin(), n.token_ids().end());
  s.block_ids.assign(n.block_ids().begin(), n.block_ids().end());
  s.computed = n.num_computed_tokens();
  s.logprobs = n.sampling().logprobs();
  s.num_prompt = n.num_prompt_tokens();
  s.min_tokens = n.sampling().min_tokens();
  s.suppressed.assign(n.sampling().suppressed_token_ids().begin(), n.sampling().suppressed_token_ids().end());
  ASSIGN_OR_RETURN(s.sampler, Sampler::Create(FromProto(n.sampling())));
  // A resumed sequence continues its RNG stream; greedy calls draw nothing.
  if (n.sampling().temperature() > 0.0f) s.sampler->SkipDraws(n.num_sampled_before());
  return s;
}

wire::StepResult StepExecutor::Execute(const wire::StepPlan& plan) {
  const auto start = std::chrono::steady_clock::now();
  wire::StepResult result;
  result.set_step_id(plan.step_id());
  auto finish = [&]() {
    result.set_execute_micros(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
            .count()));
    return std::move(result);
  };

  // Whole step: out-of-order plans mean the two sides disagree on history.
  if (plan.step_id() != next_step_id_) {
    WholeStepError(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("step_id ", plan.step_id(), " is not the expected ", next_step_id_,
                                " (plans carry consecutive step_ids starting at 1)"),
                   &result);
    return finish();
  }
  if (!connected_ && config_.topology.world_size() > 1) {
    WholeStepError(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat(config_.topology.ToString(),
                                ": the replica's communicators are not set up (no Registered rendezvous yet)"),
                   &result);
    return finish();
  }
  ++next_step_id_;

  // 1. Validate every entry against the state as the earlier parts of the plan
  //    leave it, touching nothing.
  std::unordered_set<uint64_t> dropped;
  for (uint64_t id : plan.finished_seq_ids()) dropped.insert(id);
  for (uint64_t id : plan.preempted_seq_ids()) dropped.insert(id);
  auto held = [&](uint64_t id) -> const Sequence* {
    if (dropped.count(id)) return nullptr;
    auto it = seqs_.find(id);
    return it == seqs_.end() ? nullptr : &it->second;
  };
  StepErrors errors;
  auto fail = [&](uint64_t id, const char* section, absl::string_view what) {
    errors.Add(id, absl::InvalidArgumentError(absl::StrCat("seq ", id, ": ", section, ".", what)));
  };
  std::unordered_set<uint64_t> seen_new, seen_running;
  for (const wire::NewSequence& n : plan.new_sequences()) {
    if (!seen_new.insert(n.seq_id()).second) {
      fail(n.seq_id(), "new_sequences", "seq_id appears twice in new_sequences");
    } else if (held(n.seq_id()) != nullptr) {
      fail(n.seq_id(), "new_sequences", "seq_id is already held by the worker");
    } else if (absl::Status s = CheckNew(n); !s.ok()) {
      fail(n.seq_id(), "new_sequences", s.message());
    }
  }
  for (const wire::RunningSequence& r : plan.running_sequences()) {
    const Sequence* h = held(r.seq_id());
    if (!seen_running.insert(r.seq_id()).second) {
      fail(r.seq_id(), "running_sequences", "seq_id appears twice in running_sequences");
    } else if (seen_new.count(r.seq_id())) {
      fail(r.seq_id(), "running_sequences", "seq_id is also in new_sequences of this plan");
    } else if (h == nullptr) {
      fail(r.seq_id(), "running_sequences", "seq_id is not held by the worker");
    } else if (absl::Status s = CheckRunning(r, *h); !s.ok()) {
      fail(r.seq_id(), "running_sequences", s.message());
    }
  }

  // 2. Apply: drop, create, append. Sequences named in an error are dropped.
  for (uint64_t id : dropped) seqs_.erase(id);
  std::vector<Scheduled> work;
  for (const wire::NewSequence& n : plan.new_sequences()) {
    if (errors.Bad(n.seq_id())) continue;
    auto seq = MakeSequence(n);
    if (!seq.ok()) {
      errors.Add(n.seq_id(), seq.status());
      continue;
    }
    Sequence& s = seqs_[n.seq_id()] = *std::move(seq);
    if (n.num_scheduled_tokens() > 0) work.push_back({n.seq_id(), &s, n.num_scheduled_tokens()});
  }
  for (const wire::RunningSequence& r : plan.running_sequences()) {
    if (errors.Bad(r.seq_id())) continue;
    Sequence& s = seqs_.at(r.seq_id());  // held: validated above
    s.tokens.insert(s.tokens.end(), r.new_token_ids().begin(), r.new_token_ids().end());
    s.block_ids.insert(s.block_ids.end(), r.new_block_ids().begin(), r.new_block_ids().end());
    if (r.num_scheduled_tokens() > 0) work.push_back({r.seq_id(), &s, r.num_scheduled_tokens()});
  }
  // Errors may name ids that were never created (e.g. duplicates); erase is a no-op then.
  auto drop_bad = [&]() {
    for (auto it = work.begin(); it != work.end();) {
      it = errors.Bad(it->seq_id) ? work.erase(it) : it + 1;
    }
    for (auto it = seqs_.begin(); it != seqs_.end();) {
      it = errors.Bad(it->first) ? seqs_.erase(it) : std::next(it);
    }
  };
  drop_bad();

  // 3. One forward pass over every scheduled sequence.
  if (!work.empty()) {
    ForwardBatch& b = batch_;
    b.tokens.clear();
    b.positions.clear();
    b.token_seq.clear();
    b.logit_rows.clear();
    b.n_seqs = static_cast<int32_t>(work.size());
    b.max_blocks_per_seq = 1;
    for (const Scheduled& w : work) {
      b.max_blocks_per_seq = std::max<int32_t>(b.max_blocks_per_seq,
                                               static_cast<int32_t>(w.seq->block_ids.size()));
    }
    b.block_tables.assign(static_cast<size_t>(b.n_seqs) * b.max_blocks_per_seq, 0);
    std::vector<const Scheduled*> sampled;
    for (int32_t i = 0; i < b.n_seqs; ++i) {
      const Scheduled& w = work[i];
      const Sequence& s = *w.seq;
      std::copy(s.block_ids.begin(), s.block_ids.end(),
                b.block_tables.begin() + static_cast<size_t>(i) * b.max_blocks_per_seq);
      for (int64_t p = s.computed; p < s.computed + w.num_tokens; ++p) {
        b.tokens.push_back(s.tokens[p]);
        b.positions.push_back(static_cast<int32_t>(p));
        b.token_seq.push_back(i);
      }
      if (s.computed + w.num_tokens == static_cast<int64_t>(s.tokens.size())) {
        b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size()) - 1);
        sampled.push_back(&w);
      }
    }
    if (!config_.topology.samples()) sampled.clear();  // the sampling rank answers with tokens
    // Sample on the backend when it can and no sequence needs the host chain
    // (penalties read the history; min_tokens suppression edits the logits):
    // only token ids leave the device.
    bool on_backend = config_.backend.device_sampling && runner_->CanSampleOnBackend() && !sampled.empty();
    for (const Scheduled* w : sampled) {
      const Sequence& s = *w->seq;
      const bool suppressing = !s.suppressed.empty() &&
                               static_cast<int64_t>(s.tokens.size()) - s.num_prompt < s.min_tokens;
      on_backend = on_backend && s.sampler->BackendCanSample() && !suppressing;
    }
    absl::Status forward;
    if (on_backend) {
      knobs_.clear();
      for (const Scheduled* w : sampled) knobs_.push_back(w->seq->sampler->NextBackendDraw());
      forward = runner_->ForwardSample(b, kv_.get(), knobs_, &backend_samples_);
    } else {
      // A rank that does not sample (tp rank > 0) reads no logits: none are
      // copied to the host.
      forward = runner_->Forward(b, kv_.get(), config_.topology.samples() ? &logits_ : nullptr);
    }
    if (!forward.ok()) {
      WholeStepError(absl::StatusCode::kInternal, absl::StrCat("forward pass failed: ", forward.message()),
                     &result);
      return finish();
    }
    for (const Scheduled& w : work) w.seq->computed += w.num_tokens;
    if (on_backend) {
      for (size_t r = 0; r < sampled.size(); ++r) {
        const RowSample& pick = backend_samples_[r];
        if (pick.token < 0) {
          errors.Add(sampled[r]->seq_id,
                     absl::InternalError(absl::StrCat("seq ", sampled[r]->seq_id,
                                                      ": sampling failed: every logit is NaN or -inf")));
          continue;
        }
        wire::SampledToken* t = result.add_tokens();
        t->set_seq_id(sampled[r]->seq_id);
        t->set_token_id(pick.token);
        if (sampled[r]->seq->logprobs) t->set_logprob(pick.logprob);
      }
      sampled.clear();  // nothing left for the host sampler below
    }

    // 4. Sample for the sequences whose computed tokens reached their known tokens.
    //    Each sequence owns its sampler, so they run in parallel on the pool
    //    (the tokens do not depend on how the work is split).
    const int64_t vocab = model_->config.vocab_size;
    std::vector<absl::StatusOr<Sampler::Result>> picks(sampled.size(), absl::InternalError("not sampled"));
    pool_->ParallelFor(static_cast<int64_t>(sampled.size()), 1, [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        Sequence& s = *sampled[r]->seq;
        float* row = logits_.data() + r * vocab;
        if (static_cast<int64_t>(s.tokens.size()) - s.num_prompt < s.min_tokens) {
          for (int32_t id : s.suppressed) {
            if (id >= 0 && id < vocab) row[id] = -std::numeric_limits<float>::infinity();
          }
        }
        picks[r] = s.sampler->Sample(absl::MakeConstSpan(row, vocab), s.tokens, /*want_logprob=*/s.logprobs);
      }
    });
    for (size_t r = 0; r < sampled.size(); ++r) {
      Sequence& s = *sampled[r]->seq;
      const absl::StatusOr<Sampler::Result>& pick = picks[r];
      if (!pick.ok()) {
        errors.Add(sampled[r]->seq_id,
                   absl::Status(pick.status().code(), absl::StrCat("seq ", sampled[r]->seq_id,
                                                                   ": sampling failed: ",
                                                                   pick.status().message())));
        continue;
      }
      wire::SampledToken* t = result.add_tokens();
      t->set_seq_id(sampled[r]->seq_id);
      t->set_token_id(pick->token);
      if (s.logprobs) t->set_logprob(pick->logprob);
    }
    drop_bad();
  }
  if (!errors.empty()) errors.Fill(result.mutable_error());
  return finish();
}

}  // namespace strata
