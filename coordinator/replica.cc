#include "coordinator/replica.h"

#include <algorithm>
#include <limits>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/join_token.h"

namespace strata::coordinator {

namespace {

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

FinishReason ToFinish(StopReason r) {
  switch (r) {
    case StopReason::kMaxTokens: return FinishReason::kLength;
    case StopReason::kStopToken: return FinishReason::kStop;
    case StopReason::kAborted: return FinishReason::kCancelled;
    case StopReason::kNone: break;
  }
  return FinishReason::kStop;
}

void ToWire(const GenerationRequest& r, const std::vector<int32_t>& eog, wire::SamplingParams* s) {
  if (r.min_tokens > 0) {
    s->set_min_tokens(static_cast<uint32_t>(r.min_tokens));
    s->mutable_suppressed_token_ids()->Add(r.stop_token_ids.begin(), r.stop_token_ids.end());
    if (!r.ignore_eos) s->mutable_suppressed_token_ids()->Add(eog.begin(), eog.end());
  }
  s->set_temperature(r.sampling.temperature);
  s->set_top_k(r.sampling.top_k);
  s->set_top_p(r.sampling.top_p);
  s->set_min_p(r.sampling.min_p);
  s->set_repetition_penalty(r.sampling.repetition_penalty);
  s->set_presence_penalty(r.sampling.presence_penalty);
  s->set_frequency_penalty(r.sampling.frequency_penalty);
  s->set_penalty_last_n(r.sampling.penalty_last_n);
  s->set_seed(r.sampling.seed.value_or(0));
  s->set_logprobs(r.logprobs);
}

}  // namespace

Replica::Replica(ReplicaConfig config, ReplicaHooks hooks, Metrics* metrics)
    : config_(std::move(config)), hooks_(std::move(hooks)), metrics_(metrics) {
  {
    absl::MutexLock lock(&mu_);
    forming_.resize(static_cast<size_t>(config_.tp_size) * config_.pp_size);
  }
  PublishGauges();
  thread_ = std::thread([this] { Loop(); });
}

Replica::~Replica() { Stop(); }

void Replica::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Replica::Attach(std::shared_ptr<WorkerConnection> conn) {
  absl::MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("the coordinator is shutting down");
  const wire::Register& reg = conn->registration();
  if (static_cast<int32_t>(reg.tp_size()) != config_.tp_size ||
      static_cast<int32_t>(reg.pp_size()) != config_.pp_size || static_cast<int32_t>(reg.tp_rank()) >= config_.tp_size ||
      static_cast<int32_t>(reg.pp_stage()) >= config_.pp_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "replica ", config_.index, " runs tp_size ", config_.tp_size, " x pp_size ", config_.pp_size,
        "; the worker registered as tp_rank ", reg.tp_rank(), "/", reg.tp_size(), ", pp_stage ", reg.pp_stage(),
        "/", reg.pp_size()));
  }
  if (attached_ && attached_->alive()) {
    return absl::AlreadyExistsError(absl::StrCat("replica ", config_.index, " already has worker ",
                                                 attached_->worker_id(), " attached"));
  }
  const size_t rank = static_cast<size_t>(reg.pp_stage()) * config_.tp_size + reg.tp_rank();
  if (forming_[rank] && forming_[rank]->alive()) {
    return absl::AlreadyExistsError(absl::StrCat("replica ", config_.index, ": tp_rank ", reg.tp_rank(),
                                                 ", pp_stage ", reg.pp_stage(), " is already attached as worker ",
                                                 forming_[rank]->worker_id()));
  }
  for (const auto& other : forming_) {
    if (other && other->alive() && other->registration().model().fingerprint() != reg.model().fingerprint()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replica ", config_.index, ": model fingerprint ", reg.model().fingerprint(), " differs from worker ",
          other->worker_id(), "'s ", other->registration().model().fingerprint()));
    }
  }
  forming_[rank] = std::move(conn);
  for (const auto& r : forming_) {
    if (!r || !r->alive()) return absl::OkStatus();  // wait for the other ranks
  }
  // The group is complete: a fresh rendezvous prefix, so its ranks build new
  // communicators, then Registered before the engine loop can send a plan.
  ++generation_;
  if (attached_) EndGroupLocked();
  // The group's store secret: only its ranks can read or write its keys.
  const std::string store_token = RandomHexToken(16);
  auto group = std::make_shared<WorkerGroup>(std::move(forming_), config_.tp_size, config_.pp_size,
                                             absl::StrCat("replica-", config_.index, "/gen-", generation_),
                                             store_token);
  forming_.assign(static_cast<size_t>(config_.tp_size) * config_.pp_size, nullptr);
  if (hooks_.rendezvous_opened) {
    hooks_.rendezvous_opened(group->rendezvous() + "/", store_token, config_.tp_size * config_.pp_size);
  }
  if (!group->SendRegistered()) {
    if (hooks_.rendezvous_retired) hooks_.rendezvous_retired(group->rendezvous() + "/");
    group->Cancel();
    return absl::UnavailableError(absl::StrCat("replica ", config_.index, ": a rank of group ",
                                               group->worker_id(), " went away while registering"));
  }
  attached_ = std::move(group);
  woken_ = true;
  return absl::OkStatus();
}

void Replica::EndGroupLocked() {
  // Retire the group's rendezvous keys before its ranks are cut off, so a
  // rank that sees its stream end never finds its old keys still served.
  if (hooks_.rendezvous_retired) hooks_.rendezvous_retired(attached_->rendezvous() + "/");
  attached_->Cancel();
  attached_.reset();
}

void Replica::Detach(const WorkerConnection* conn) {
  if (conn->left() && metrics_) metrics_->WorkerLeft(config_.index);
  absl::MutexLock lock(&mu_);
  for (auto& f : forming_) {
    if (f.get() == conn) f.reset();
  }
  if (attached_ && attached_->Contains(conn)) {
    EndGroupLocked();
    ready_ = false;
  }
  woken_ = true;
}

void Replica::Enqueue(PendingRequest request) {
  outstanding_++;
  queued_++;
  absl::MutexLock lock(&mu_);
  inbox_.push_back(std::move(request));
}

void Replica::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void Replica::CancelAll(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (!cancel_all_.ok()) return;  // the first status stays
  cancel_all_ = std::move(status);
  woken_ = true;
}

void Replica::Loop() {
  for (;;) {
    std::vector<PendingRequest> incoming;
    std::shared_ptr<WorkerGroup> attached;
    const bool busy = conn_ && scheduler_ && (scheduler_->HasUnfinished() || !in_flight_.empty()) && !stalled_;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || woken_ || !inbox_.empty() || attached_ != conn_;
      };
      // Wake up regularly to enforce deadlines and notice dead workers.
      if (!busy) mu_.AwaitWithTimeout(absl::Condition(&wake), absl::Milliseconds(20));
      if (stop_) break;
      incoming.swap(inbox_);
      woken_ = false;
      attached = attached_;
      cancelled_ = cancel_all_;
    }
    stalled_ = false;
    SyncConnection(attached);
    for (PendingRequest& p : incoming) Admit(std::move(p));
    if (!cancelled_.ok()) CancelActive(cancelled_);
    if (conn_) {
      Reap();
      if (scheduler_->HasUnfinished() || !in_flight_.empty()) Step();
    }
    PublishGauges();
  }
  if (conn_) conn_->Shutdown("coordinator shutting down");
  {
    absl::MutexLock lock(&mu_);
    // Ranks still waiting for the rest of their group would otherwise only
    // see their stream cut when the server stops, and dial again.
    for (const auto& f : forming_) {
      if (f && f->alive()) f->Shutdown("coordinator shutting down");
    }
    for (PendingRequest& p : inbox_) {
      p.stream->Fail(absl::UnavailableError("the coordinator is shutting down"));
    }
    inbox_.clear();
  }
  for (auto& [id, a] : active_) a.pending.stream->Fail(absl::UnavailableError("the coordinator is shutting down"));
  active_.clear();
  ready_ = false;
}

void Replica::SyncConnection(const std::shared_ptr<WorkerGroup>& attached) {
  if (conn_ && (conn_ != attached || !conn_->alive())) {
    Abandon(GroupEnded(absl::UnavailableError(absl::StrCat("worker ", conn_->worker_id(), " went away"))));
  }
  if (!conn_ && attached && attached->alive()) {
    SchedulerConfig sc = config_.scheduler;
    sc.num_blocks = static_cast<int32_t>(attached->kv_capacity_blocks());
    auto sched = Scheduler::Create(sc);
    if (!sched.ok()) {
      attached->Shutdown(absl::StrCat("cannot schedule for this worker: ", sched.status().message()));
      attached->Cancel();
      return;
    }
    scheduler_ = *std::move(sched);
    scheduler_->set_prefix_cache_observer([this](uint64_t hash, bool cached) {
      absl::MutexLock lock(&cache_mu_);
      if (cached) {
        cached_hashes_.insert(hash);
      } else {
        cached_hashes_.erase(hash);
      }
    });
    reported_queries_ = reported_hits_ = 0;
    conn_ = attached;
    step_id_ = 0;
    ready_ = true;
    if (hooks_.readiness_changed) hooks_.readiness_changed();
  }
}

int32_t Replica::CachedPrefixBlocks(const std::vector<uint64_t>& chain) const {
  absl::MutexLock lock(&cache_mu_);
  int32_t n = 0;
  while (n < static_cast<int32_t>(chain.size()) && cached_hashes_.contains(chain[n])) ++n;
  return n;
}

absl::Status Replica::GroupEnded(const absl::Status& seen) const {
  const absl::Status why = conn_ ? conn_->EndStatus(seen) : seen;
  return absl::UnavailableError(absl::StrCat("replica ", config_.index, ": ", why.message()));
}

void Replica::CancelActive(const absl::Status& status) {
  std::vector<int64_t> ids;
  for (const auto& [id, a] : active_) ids.push_back(id);
  for (int64_t id : ids) EndWithError(id, status);
}

void Replica::Abandon(const absl::Status& why) {
  conn_.reset();
  in_flight_.clear();
  carried_finished_.clear();
  carried_preempted_.clear();
  scheduler_.reset();  // the worker's KV is gone with it
  {
    absl::MutexLock lock(&cache_mu_);
    cached_hashes_.clear();
  }
  ready_ = false;
  for (auto& [id, a] : active_) {
    // Counted down after the retry is enqueued elsewhere, so the cluster's
    // outstanding total never dips to 0 while a request moves (a drain
    // waiting for it would end early).
    const bool was_queued = !a.scheduled_once;
    if (!a.pending.stream->HasStreamed() && hooks_.retry && cancelled_.ok()) {
      a.pending.attempts++;
      hooks_.retry(std::move(a.pending));
    } else {
      a.pending.stream->Fail(why);
      if (metrics_) metrics_->Failed(why.code());
    }
    outstanding_--;
    if (was_queued) queued_--;
  }
  active_.clear();
  if (hooks_.readiness_changed) hooks_.readiness_changed();
}

void Replica::Admit(PendingRequest p) {
  if (!cancelled_.ok()) {
    p.stream->Fail(cancelled_);
    if (metrics_) metrics_->Failed(cancelled_.code());
    outstanding_--;
    queued_--;
    return;
  }
  if (!conn_) {
    if (hooks_.retry) {
      p.attempts++;
      hooks_.retry(std::move(p));
    } else {
      p.stream->Fail(absl::UnavailableError(absl::StrCat("replica ", config_.index, " has no worker")));
    }
    outstanding_--;
    queued_--;
    return;
  }
  SequenceRequest sr;
  sr.id = p.seq_id;
  sr.prompt = p.request.prompt;
  sr.max_tokens = p.request.max_tokens;
  sr.priority = p.request.priority;
  sr.stop_token_ids = p.request.stop_token_ids;
  if (!p.request.ignore_eos) {
    const auto& eog = config_.model->end_of_generation_ids;
    sr.stop_token_ids.insert(sr.stop_token_ids.end(), eog.begin(), eog.end());
  }
  absl::Status st = scheduler_->Add(std::move(sr));
  if (!st.ok()) {
    outstanding_--;
    queued_--;
    p.stream->Fail(st);
    if (metrics_) metrics_->Failed(st.code());
    return;
  }
  const int64_t id = p.seq_id;
  RequestOutput output(config_.model->tokenizer.get(), p.request);
  active_.emplace(id, Active{std::move(p), std::move(output), 0, false, absl::Now()});
}

void Replica::EndWithError(int64_t seq_id, const absl::Status& status) {
  auto it = active_.find(seq_id);
  if (it == active_.end()) return;
  scheduler_->Abort(seq_id).IgnoreError();
  it->second.pending.stream->Fail(status);
  if (metrics_) metrics_->Failed(status.code());
  outstanding_--;
  if (!it->second.scheduled_once) queued_--;
  active_.erase(it);
}

void Replica::Reap() {
  const absl::Time now = absl::Now();
  std::vector<int64_t> cancelled, late;
  for (auto& [id, a] : active_) {
    if (a.pending.stream->IsCancelled()) {
      cancelled.push_back(id);
    } else if (now >= a.pending.request.deadline) {
      late.push_back(id);
    }
  }
  for (int64_t id : cancelled) {
    EndWithError(id, active_.at(id).pending.stream->cancel_reason());
  }
  for (int64_t id : late) {
    EndWithError(id, absl::DeadlineExceededError(absl::StrCat(
                         "request ", active_.at(id).pending.request.request_id, " passed its deadline after ",
                         active_.at(id).output.num_generated(), " generated tokens")));
  }
}

wire::StepPlan Replica::BuildPlan(const SchedulerOutput& out) {
  wire::StepPlan plan;
  plan.set_step_id(++step_id_);
  for (int64_t id : out.finished_ids) plan.add_finished_seq_ids(static_cast<uint64_t>(id));
  for (int64_t id : out.preempted_ids) plan.add_preempted_seq_ids(static_cast<uint64_t>(id));
  const absl::Time now = absl::Now();
  for (const NewSequence& ns : out.new_sequences) {
    Active& a = active_.at(ns.seq_id);
    if (!a.scheduled_once) {
      a.scheduled_once = true;
      queued_--;
      if (metrics_) metrics_->Queued(Seconds(now - a.pending.submitted));
    }
    wire::NewSequence* w = plan.add_new_sequences();
    w->set_seq_id(static_cast<uint64_t>(ns.seq_id));
    w->mutable_token_ids()->Add(ns.token_ids.begin(), ns.token_ids.end());
    const int32_t prompt_len = static_cast<int32_t>(a.pending.request.prompt.size());
    w->set_num_prompt_tokens(static_cast<uint32_t>(prompt_len));
    ToWire(a.pending.request, config_.model->end_of_generation_ids, w->mutable_sampling());
    for (int32_t b : ns.block_ids) w->add_block_ids(static_cast<uint32_t>(b));
    w->set_num_computed_tokens(static_cast<uint32_t>(ns.num_computed));
    w->set_num_scheduled_tokens(static_cast<uint32_t>(ns.num_new_tokens));
    w->set_num_sampled_before(static_cast<uint32_t>(ns.token_ids.size()) - static_cast<uint32_t>(prompt_len));
    a.worker_known_tokens = static_cast<int32_t>(ns.token_ids.size());
  }
  for (const RunningDelta& d : out.running_deltas) {
    Active& a = active_.at(d.seq_id);
    const Sequence* seq = scheduler_->Find(d.seq_id);
    wire::RunningSequence* w = plan.add_running_sequences();
    w->set_seq_id(static_cast<uint64_t>(d.seq_id));
    if (seq != nullptr) {
      const auto& tokens = seq->tokens();
      for (int32_t i = a.worker_known_tokens; i < static_cast<int32_t>(tokens.size()); ++i) {
        w->add_new_token_ids(tokens[i]);
      }
      a.worker_known_tokens = static_cast<int32_t>(tokens.size());
    }
    for (int32_t b : d.new_block_ids) w->add_new_block_ids(static_cast<uint32_t>(b));
    w->set_num_scheduled_tokens(static_cast<uint32_t>(d.num_new_tokens));
  }
  return plan;
}

void Replica::Complete(Active& a, GenerationChunk chunk) {
  const absl::Time now = absl::Now();
  if (metrics_) {
    metrics_->Finished(chunk.finish, Seconds(now - a.pending.submitted), chunk.prompt_tokens,
                       chunk.completion_tokens);
  }
  a.pending.stream->Push(std::move(chunk));
  outstanding_--;
}

void Replica::Step() {
  // Fill the pipeline: schedule and send until max_steps_in_flight plans are out.
  const int32_t depth = config_.max_steps_in_flight > 0 ? config_.max_steps_in_flight : config_.pp_size;
  while (static_cast<int32_t>(in_flight_.size()) < depth) {
    int32_t cap = std::numeric_limits<int32_t>::max();
    if (depth > 1) {
      const int32_t seqs = scheduler_->num_running() + scheduler_->num_waiting();
      cap = std::max(1, (seqs + depth - 1) / depth);
    }
    SchedulerOutput out = scheduler_->Schedule(cap);
    carried_finished_.insert(carried_finished_.end(), out.finished_ids.begin(), out.finished_ids.end());
    carried_preempted_.insert(carried_preempted_.end(), out.preempted_ids.begin(), out.preempted_ids.end());
    if (out.empty()) break;  // the dropped ids ride along with the next real step
    out.finished_ids = std::move(carried_finished_);
    out.preempted_ids = std::move(carried_preempted_);
    carried_finished_.clear();
    carried_preempted_.clear();
    const wire::StepPlan plan = BuildPlan(out);
    if (absl::Status s = conn_->Send(plan); !s.ok()) {
      const absl::Status why = GroupEnded(s);
      conn_->Cancel();
      Abandon(why);
      return;
    }
    InFlight f;
    f.step_id = plan.step_id();
    for (const wire::NewSequence& ns : plan.new_sequences()) f.scheduled.insert(ns.seq_id());
    for (const wire::RunningSequence& rs : plan.running_sequences()) f.scheduled.insert(rs.seq_id());
    f.mentioned = f.scheduled;
    f.mentioned.insert(plan.finished_seq_ids().begin(), plan.finished_seq_ids().end());
    f.mentioned.insert(plan.preempted_seq_ids().begin(), plan.preempted_seq_ids().end());
    f.total_tokens = out.total_tokens;
    f.num_seqs = static_cast<int32_t>(out.new_sequences.size() + out.running_deltas.size());
    f.num_preempted = static_cast<int32_t>(out.preempted_ids.size());
    f.sent = absl::Now();
    in_flight_.push_back(std::move(f));
  }
  if (in_flight_.empty()) {
    // Nothing can run now (all waiting, none admissible).
    stalled_ = true;
    return;
  }
  const InFlight step = std::move(in_flight_.front());
  in_flight_.pop_front();
  const absl::Time t0 = step.sent;
  StepExpectation expect;
  expect.step_id = step.step_id;
  expect.vocab_size = static_cast<int32_t>(config_.model->config.vocab_size);
  expect.scheduled = &step.scheduled;
  expect.mentioned = &step.mentioned;
  // A worker that breaks the protocol fails the step like a dead one: its
  // group is cut off and the requests are retried elsewhere or failed.
  absl::StatusOr<wire::StepResult> result = conn_->Await(expect);
  const absl::Time t1 = absl::Now();
  if (!result.ok()) {
    const absl::Status why = GroupEnded(result.status());
    conn_->Cancel();
    Abandon(why);
    return;
  }
  if (metrics_) {
    const double round_trip = Seconds(t1 - t0);
    metrics_->Step(step.total_tokens, step.num_seqs, round_trip,
                   std::max(0.0, round_trip - result->execute_micros() * 1e-6));
    if (step.num_preempted > 0) metrics_->Preempted(step.num_preempted);
  }
  if (result->has_error()) {
    const wire::StepError& err = result->error();
    const absl::Status status(static_cast<absl::StatusCode>(err.code()),
                              absl::StrCat("worker ", conn_->worker_id(), ": ", err.message()));
    if (err.seq_ids().empty()) {
      conn_->Cancel();
      Abandon(status);
      return;
    }
    for (uint64_t id : err.seq_ids()) EndWithError(static_cast<int64_t>(id), status);
  }
  std::vector<SampledToken> sampled;
  std::unordered_map<int64_t, float> logprob;
  for (const wire::SampledToken& t : result->tokens()) {
    const int64_t id = static_cast<int64_t>(t.seq_id());
    if (active_.count(id) == 0) continue;
    sampled.push_back({id, t.token_id()});
    logprob[id] = t.logprob();
  }
  UpdateResult update = scheduler_->Update(sampled);
  std::unordered_map<int64_t, StopReason> finished;
  for (const FinishedSequence& f : update.finished) finished[f.seq_id] = f.reason;
  for (const SampledToken& t : sampled) {
    auto it = active_.find(t.seq_id);
    if (it == active_.end()) continue;
    Active& a = it->second;
    if (a.output.num_generated() == 0) {
      if (metrics_) metrics_->FirstToken(Seconds(t1 - a.pending.submitted));
    } else if (metrics_) {
      metrics_->InterToken(Seconds(t1 - a.last_token));
    }
    a.last_token = t1;
    auto f = finished.find(t.seq_id);
    if (f != finished.end()) {
      Complete(a, a.output.Finish(ToFinish(f->second), t.token, logprob[t.seq_id]));
      active_.erase(it);
      continue;
    }
    bool stopped = false;
    GenerationChunk chunk = a.output.Append(t.token, logprob[t.seq_id], &stopped);
    if (stopped) {
      scheduler_->Abort(t.seq_id).IgnoreError();
      Complete(a, std::move(chunk));
      active_.erase(it);
    } else {
      a.pending.stream->Push(std::move(chunk));
    }
  }
}

void Replica::PublishGauges() {
  kv_blocks_used_ = scheduler_ ? scheduler_->allocator().num_used() : 0;
  if (!metrics_) return;
  ReplicaGauges g;
  g.ready = ready_.load();
  if (scheduler_) {
    g.running = scheduler_->num_running();
    g.waiting = scheduler_->num_waiting();
    g.kv_blocks_free = scheduler_->allocator().num_free();
    g.kv_blocks_total = scheduler_->allocator().num_blocks() - 1;
    g.prefix_cached_blocks = scheduler_->allocator().num_cached();
    const int64_t q = scheduler_->prefix_query_tokens(), h = scheduler_->prefix_hit_tokens();
    if (q != reported_queries_ || h != reported_hits_) {
      metrics_->PrefixCache(q - reported_queries_, h - reported_hits_);
      reported_queries_ = q;
      reported_hits_ = h;
    }
  }
  metrics_->SetReplica(config_.index, g);
}

}  // namespace strata::coordinator
