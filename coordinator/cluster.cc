#include "coordinator/cluster.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/format/model_fingerprint.h"
#include "common/status_macros.h"
#include "coordinator/prefix_hash.h"

namespace strata::coordinator {

namespace {

std::string Stem(const std::string& path) {
  std::string s = path;
  while (!s.empty() && s.back() == '/') s.pop_back();
  const size_t slash = s.rfind('/');
  if (slash != std::string::npos) s = s.substr(slash + 1);
  const size_t dot = s.rfind(".gguf");
  if (dot != std::string::npos && dot + 5 == s.size()) s = s.substr(0, dot);
  return s;
}

uint64_t RandomSeed() {
  static std::random_device rd;
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Create(const ClusterConfig& config, Metrics* metrics) {
  if (config.models.empty()) return absl::InvalidArgumentError("no model configured (--model)");
  if (config.max_queue < 0) return absl::InvalidArgumentError("max_queue must be >= 0");
  auto cluster = std::unique_ptr<Cluster>(new Cluster(config, metrics));
  int32_t replica_index = 0;
  for (const ClusterConfig::Model& mc : config.models) {
    if (mc.replicas < 1) {
      return absl::InvalidArgumentError(absl::StrCat("model ", mc.path, ": replicas must be >= 1"));
    }
    auto m = std::make_unique<Model>();
    ASSIGN_OR_RETURN(m->meta, LoadModelMetadata(mc.path));
    ServedModel& s = m->served;
    s.name = mc.name.empty() ? Stem(mc.path) : mc.name;
    for (const auto& other : cluster->models_) {
      if (other->served.name == s.name) {
        return absl::InvalidArgumentError(absl::StrCat("model name '", s.name, "' is configured twice"));
      }
    }
    s.tokenizer = m->meta->tokenizer.get();
    s.chat_template = m->meta->chat_template ? &*m->meta->chat_template : nullptr;
    s.chat_template_error = m->meta->chat_template_error;
    s.vocab_size = static_cast<int32_t>(m->meta->config.vocab_size);
    const int64_t model_ctx = m->meta->config.context_length;
    s.context_length = config.max_context > 0 ? config.max_context
                                              : static_cast<int32_t>(std::min<int64_t>(model_ctx, 4096));
    if (s.context_length > model_ctx) {
      return absl::InvalidArgumentError(absl::StrCat("max_context ", s.context_length, " exceeds model ", s.name,
                                                     "'s context length ", model_ctx));
    }
    s.max_prompt_tokens = config.max_prompt_tokens > 0 ? std::min(config.max_prompt_tokens, s.context_length - 1)
                                                       : s.context_length - 1;
    s.max_tokens = config.max_tokens > 0 ? std::min(config.max_tokens, s.context_length - 1)
                                         : s.context_length - 1;
    if (mc.fingerprint == "auto") {
      absl::StatusOr<std::string> fp = ModelFingerprint(mc.path);
      if (!fp.ok()) {
        return absl::Status(fp.status().code(),
                            absl::StrCat("model ", mc.path, ": fingerprint: ", fp.status().message()));
      }
      m->fingerprint = *std::move(fp);
    } else if (mc.fingerprint != "off") {
      m->fingerprint = mc.fingerprint;
    }
    m->router = std::make_unique<Router>();
    Model* model = m.get();
    Cluster* self = cluster.get();
    for (int32_t r = 0; r < mc.replicas; ++r) {
      ReplicaConfig rc;
      rc.index = replica_index++;
      rc.model = m->meta.get();
      rc.scheduler = config.scheduler;
      rc.tp_size = config.tp_size;
      rc.pp_size = config.pp_size;
      ReplicaHooks hooks;
      hooks.rendezvous_opened = config.rendezvous_opened;
      hooks.rendezvous_retired = config.rendezvous_retired;
      hooks.retry = [self, model](PendingRequest p) { self->Route(*model, std::move(p)); };
      hooks.readiness_changed = [self] { self->ReadinessChanged(); };
      m->replicas.push_back(std::make_unique<Replica>(rc, std::move(hooks), metrics));
    }
    cluster->models_.push_back(std::move(m));
  }
  return cluster;
}

Cluster::~Cluster() { Shutdown(); }

void Cluster::Shutdown() {
  {
    absl::MutexLock lock(&ready_mu_);
    on_readiness_change_ = nullptr;
  }
  for (auto& m : models_) {
    for (auto& r : m->replicas) r->Stop();
  }
}

void Cluster::StopAdmitting() {
  {
    // Under the admission lock: once this returns no Submit is between its
    // check and its enqueue.
    absl::MutexLock admission(&admission_mu_);
    if (draining_.exchange(true)) return;
  }
  if (metrics_) metrics_->SetDraining(true);
  ReadinessChanged();
}

int32_t Cluster::outstanding() const {
  int32_t n = 0;
  for (const auto& m : models_) {
    for (const auto& r : m->replicas) n += r->outstanding();
  }
  return n;
}

int32_t Cluster::kv_blocks_used() const {
  int32_t n = 0;
  for (const auto& m : models_) {
    for (const auto& r : m->replicas) n += r->kv_blocks_used();
  }
  return n;
}

void Cluster::CancelAll(const absl::Status& status) {
  for (auto& m : models_) {
    for (auto& r : m->replicas) r->CancelAll(status);
  }
}

void Cluster::set_on_readiness_change(std::function<void(bool)> fn) {
  absl::MutexLock lock(&ready_mu_);
  on_readiness_change_ = std::move(fn);
}

void Cluster::ReadinessChanged() {
  const bool ready = IsReady();
  absl::MutexLock lock(&ready_mu_);
  if (on_readiness_change_) on_readiness_change_(ready);
}

std::vector<ModelStatus> Cluster::ListModels() const {
  std::vector<ModelStatus> out;
  for (const auto& m : models_) {
    ModelStatus s;
    s.name = m->served.name;
    s.context_length = m->served.context_length;
    s.vocab_size = m->served.vocab_size;
    s.replicas = static_cast<int32_t>(m->replicas.size());
    for (const auto& r : m->replicas) s.ready_replicas += r->ready() ? 1 : 0;
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<const ServedModel*> Cluster::FindModel(absl::string_view name) const {
  if (name.empty()) {
    if (models_.size() == 1) return &models_[0]->served;
    std::vector<std::string> names;
    for (const auto& m : models_) names.push_back(m->served.name);
    return absl::InvalidArgumentError(
        absl::StrCat("model: several models are served (", absl::StrJoin(names, ", "), "); name one"));
  }
  for (const auto& m : models_) {
    if (m->served.name == name) return &m->served;
  }
  return absl::NotFoundError(absl::StrCat("model '", name, "' is not served here"));
}

bool Cluster::IsModelReady(absl::string_view name) const {
  if (draining_.load()) return false;
  for (const auto& m : models_) {
    if (m->served.name != name && !(name.empty() && models_.size() == 1)) continue;
    for (const auto& r : m->replicas) {
      if (r->ready()) return true;
    }
  }
  return false;
}

bool Cluster::IsReady() const {
  if (draining_.load()) return false;
  for (const auto& m : models_) {
    for (const auto& r : m->replicas) {
      if (r->ready()) return true;
    }
  }
  return false;
}

absl::Status Cluster::Validate(const Model& m, GenerationRequest& r) const {
  const ServedModel& s = m.served;
  if (r.prompt.empty()) return absl::InvalidArgumentError("prompt: empty (at least one token is needed)");
  if (static_cast<int32_t>(r.prompt.size()) > s.max_prompt_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", r.prompt.size(),
                                                   " tokens exceed the limit of max_prompt_tokens = ",
                                                   s.max_prompt_tokens));
  }
  for (int32_t t : r.prompt) {
    if (t < 0 || t >= s.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt: token id ", t, " is outside the vocabulary [0, ", s.vocab_size, ")"));
    }
  }
  for (int32_t t : r.stop_token_ids) {
    if (t < 0 || t >= s.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids: token id ", t, " is outside the vocabulary [0, ", s.vocab_size, ")"));
    }
  }
  const int32_t prompt_len = static_cast<int32_t>(r.prompt.size());
  if (r.max_tokens < 0) return absl::InvalidArgumentError("max_tokens: must be >= 0");
  if (r.max_tokens > s.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens: ", r.max_tokens, " exceeds the server limit of ", s.max_tokens));
  }
  if (r.max_tokens == 0) {
    r.max_tokens = std::min(s.max_tokens, s.context_length - prompt_len);
  } else if (prompt_len + r.max_tokens > s.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: prompt (", prompt_len, " tokens) + max_tokens (",
                                                   r.max_tokens, ") exceeds the context length of ",
                                                   s.context_length, " tokens"));
  }
  if (r.min_tokens < 0 || r.min_tokens > r.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_tokens: ", r.min_tokens, " must be in [0, max_tokens = ", r.max_tokens, "]"));
  }
  RETURN_IF_ERROR(ValidateSamplingParams(r.sampling));
  if (!r.sampling.seed.has_value()) r.sampling.seed = RandomSeed();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RequestStream>> Cluster::Submit(absl::string_view model_name,
                                                               GenerationRequest request) {
  auto fail = [this](absl::Status s) {
    if (metrics_) metrics_->Failed(s.code());
    return s;
  };
  Model* model = nullptr;
  {
    auto found = FindModel(model_name);
    if (!found.ok()) return fail(found.status());
    for (auto& m : models_) {
      if (&m->served == *found) model = m.get();
    }
  }
  absl::Status valid = Validate(*model, request);
  if (!valid.ok()) return fail(valid);
  // Check and enqueue under one lock so concurrent submits cannot overshoot max_queue.
  absl::MutexLock admission(&admission_mu_);
  if (draining_.load()) {
    return fail(absl::UnavailableError(
        "the server is shutting down and accepts no new requests; retry on another instance"));
  }
  int32_t queued = 0;
  bool any_ready = false;
  for (const auto& m : models_) {
    for (const auto& r : m->replicas) queued += r->queued();
  }
  for (const auto& r : model->replicas) any_ready |= r->ready();
  if (!any_ready) {
    return fail(absl::UnavailableError(absl::StrCat("model '", model->served.name,
                                                    "' has no ready replica (no worker attached)")));
  }
  if (queued >= config_.max_queue) {
    return fail(absl::ResourceExhaustedError(absl::StrCat(
        "the request queue is full (", queued, " requests waiting, max_queue = ", config_.max_queue,
        "); retry later")));
  }
  PendingRequest p;
  p.seq_id = next_seq_id_++;
  if (request.request_id.empty()) request.request_id = absl::StrCat("req-", p.seq_id);
  p.request = std::move(request);
  p.stream = std::make_shared<RequestStream>();
  p.submitted = absl::Now();
  std::shared_ptr<RequestStream> stream = p.stream;
  Route(*model, std::move(p));
  return stream;
}

void Cluster::RecordRejection(absl::StatusCode code) {
  if (metrics_) metrics_->Failed(code);
}

void Cluster::Route(Model& m, PendingRequest p) {
  std::vector<uint64_t> chain;
  ExtendPrefixHashes(p.request.prompt, config_.scheduler.block_size, &chain);
  std::vector<ReplicaLoad> candidates;
  for (const auto& r : m.replicas) {
    if (r->ready()) candidates.push_back({r->index(), r->outstanding(), r->CachedPrefixBlocks(chain)});
  }
  if (candidates.empty() || p.attempts > static_cast<int32_t>(m.replicas.size())) {
    const absl::Status st = absl::UnavailableError(
        absl::StrCat("model '", m.served.name, "': no ready replica to run request ", p.request.request_id,
                     p.attempts > 0 ? " (its replica's worker went away)" : ""));
    if (metrics_) metrics_->Failed(st.code());
    p.stream->Fail(st);
    return;
  }
  const int32_t chosen = m.router->Pick(candidates);
  for (auto& r : m.replicas) {
    if (r->index() != chosen) continue;
    Replica* replica = r.get();
    p.stream->set_on_cancel([replica] { replica->Wake(); });
    replica->Enqueue(std::move(p));
    return;
  }
}

absl::StatusOr<Replica*> Cluster::ReplicaFor(const ::strata::worker::v1::Register& reg) const {
  RETURN_IF_ERROR(ValidateRegister(reg, config_.register_limits));
  if (reg.protocol_version() != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("protocol_version ", reg.protocol_version(), " is not supported (this coordinator speaks 1)"));
  }
  if (static_cast<int32_t>(reg.tp_size()) != config_.tp_size ||
      static_cast<int32_t>(reg.pp_size()) != config_.pp_size) {
    return absl::FailedPreconditionError(absl::StrCat("the worker runs tp_size ", reg.tp_size(), " x pp_size ",
                                                      reg.pp_size(), "; this coordinator's replicas are tp_size ",
                                                      config_.tp_size, " x pp_size ", config_.pp_size));
  }
  if (reg.tp_rank() >= reg.tp_size() || reg.pp_stage() >= reg.pp_size()) {
    return absl::InvalidArgumentError(absl::StrCat("tp_rank ", reg.tp_rank(), " / pp_stage ", reg.pp_stage(),
                                                   " outside tp_size ", reg.tp_size(), " x pp_size ", reg.pp_size()));
  }
  for (const auto& m : models_) {
    if (m->served.name != reg.model().name()) continue;
    if (static_cast<int32_t>(reg.model().vocab_size()) != m->served.vocab_size) {
      return absl::FailedPreconditionError(absl::StrCat("model ", m->served.name, ": worker vocab_size ",
                                                        reg.model().vocab_size(), " != coordinator's ",
                                                        m->served.vocab_size));
    }
    if (static_cast<int32_t>(reg.model().context_length()) < m->served.context_length) {
      return absl::FailedPreconditionError(absl::StrCat("model ", m->served.name, ": worker context_length ",
                                                        reg.model().context_length(), " < the served ",
                                                        m->served.context_length));
    }
    if (static_cast<int32_t>(reg.block_size()) != config_.scheduler.block_size) {
      return absl::FailedPreconditionError(absl::StrCat("block_size ", reg.block_size(),
                                                        " != the coordinator's ", config_.scheduler.block_size));
    }
    if (!m->fingerprint.empty() && reg.model().fingerprint() != m->fingerprint) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model ", m->served.name, ": the worker's model fingerprint '", reg.model().fingerprint(),
          "' is not the coordinator's '", m->fingerprint,
          "' (different weights; --model-fingerprint on the coordinator)"));
    }
    for (const auto& r : m->replicas) {
      if (r->index() == static_cast<int32_t>(reg.replica())) return r.get();
    }
    return absl::NotFoundError(absl::StrCat("replica ", reg.replica(), " is not configured for model ",
                                            m->served.name, " (", m->replicas.size(), " replicas)"));
  }
  return absl::NotFoundError(absl::StrCat("model '", reg.model().name(), "' is not served by this coordinator"));
}

}  // namespace strata::coordinator
