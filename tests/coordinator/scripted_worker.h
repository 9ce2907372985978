// Test helpers for the cluster over real gRPC: scripted workers and a
// fixture that hosts a Cluster with the WorkerLink service.
//
// A ScriptedWorker speaks the real WorkerLink protocol, checks every StepPlan
// against the protocol's rules (known ids, block tables covering the computed
// tokens, no block shared by two live sequences, tokens only appended) and
// "samples" by a fixed rule of the sequence's tokens (Rule), so the expected
// output of any request is known exactly (Expected). It can die (cancel its
// stream) or leave (send Leave, then wait for the coordinator's Shutdown) at a
// given step.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/cluster.h"
#include "coordinator/metrics.h"
#include "coordinator/worker_link_service.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "strata/v1/worker.grpc.pb.h"

namespace strata::coordinator::test {

namespace w = ::strata::worker::v1;

inline constexpr int32_t kBlock = 16;

// The scripted worker's sampling rule (never an end-of-generation id of SmolLM2: those are < 100).
inline int32_t Rule(const std::vector<int32_t>& tokens) {
  int64_t h = 0;
  for (int32_t t : tokens) h = (h * 31 + t) % 1000003;
  return 100 + static_cast<int32_t>((h + static_cast<int64_t>(tokens.size())) % 400);
}

inline std::vector<int32_t> Expected(std::vector<int32_t> prompt, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t t = Rule(prompt);
    out.push_back(t);
    prompt.push_back(t);
  }
  return out;
}

struct WorkerScript {
  int32_t replica = 0;
  int32_t kv_blocks = 257;
  absl::Duration step_delay = absl::ZeroDuration();
  int die_at_step = -1;  // cancel the stream when this step arrives (-1: never)
  // When this step arrives: send Leave{leave_reason} instead of executing it,
  // then answer no plan and wait for the coordinator's Shutdown (-1: never).
  int leave_at_step = -1;
  std::string leave_reason = "test leave";
  // When this step arrives: never answer it, only keep sending heartbeats
  // (a worker wedged inside a step), until the coordinator cancels the stream.
  int hang_at_step = -1;
  // Place in a TP x PP replica. Only the sampling rank (last stage, tp 0)
  // answers the rule's tokens; the others answer wrong ones, which the
  // coordinator must ignore.
  uint32_t tp_rank = 0, tp_size = 1, pp_stage = 0, pp_size = 1;
  std::string fingerprint = "fp";
  // Sent as x-strata-join-token metadata when not empty.
  std::string join_token = "";
  // When this step arrives: answer it with `bad_token_id` for the first
  // scheduled sequence (a rogue worker writing its own tokens) (-1: never).
  int bad_token_at_step = -1;
  int32_t bad_token_id = 2147483647;
  // When this step arrives: answer with a token for a sequence the plan did
  // not schedule (-1: never).
  int unscheduled_token_at_step = -1;
};

class ScriptedWorker {
 public:
  ScriptedWorker(const std::string& addr, WorkerScript script, const ServedModel& model)
      : script_(script), model_(model) {
    channel_ = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedWorker() {
    ctx_.TryCancel();
    thread_.join();
  }
  bool WaitRegistered() { return registered_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  bool registered() const { return registered_.HasBeenNotified(); }
  bool gone() const { return gone_.HasBeenNotified(); }
  w::Registered registration() {
    absl::MutexLock l(&mu_);
    return registered_msg_;
  }
  bool WaitGone() { return gone_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  // How the coordinator ended the stream (valid once gone()).
  grpc::Status final_status() const { return final_status_; }
  bool WaitLeft() { return left_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  // The reason of the Shutdown the coordinator sent (empty: none came).
  std::string shutdown_reason() {
    absl::MutexLock l(&mu_);
    return shutdown_reason_;
  }
  // Plans that arrived after Leave was sent (they are not answered).
  int plans_after_leave() const { return plans_after_leave_.load(); }
  int steps() const { return steps_.load(); }
  int seqs_seen() const { return seqs_seen_.load(); }
  int preemptions() const { return preemptions_.load(); }
  std::vector<std::string> errors() {
    absl::MutexLock l(&mu_);
    return errors_;
  }
  std::set<uint64_t> finished() {
    absl::MutexLock l(&mu_);
    return finished_;
  }

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    std::vector<uint32_t> blocks;
    uint32_t computed = 0;
  };

  void Error(std::string e) {
    absl::MutexLock l(&mu_);
    errors_.push_back(std::move(e));
  }

  void Run() {
    auto stub = w::WorkerLink::NewStub(channel_);
    if (!script_.join_token.empty()) ctx_.AddMetadata("x-strata-join-token", script_.join_token);
    auto stream = stub->Attach(&ctx_);
    w::WorkerMessage reg;
    auto* r = reg.mutable_register_();
    r->set_protocol_version(1);
    r->set_replica(script_.replica);
    r->set_pp_size(script_.pp_size);
    r->set_tp_size(script_.tp_size);
    r->set_pp_stage(script_.pp_stage);
    r->set_tp_rank(script_.tp_rank);
    r->set_peer_address(absl::StrCat("peer-", script_.pp_stage, "-", script_.tp_rank));
    r->mutable_model()->set_fingerprint(script_.fingerprint);
    r->set_device("scripted");
    r->set_kv_capacity_blocks(script_.kv_blocks);
    r->set_block_size(kBlock);
    r->mutable_model()->set_name(model_.name);
    r->mutable_model()->set_vocab_size(model_.vocab_size);
    r->mutable_model()->set_context_length(model_.context_length);
    stream->Write(reg);
    w::CoordinatorMessage msg;
    if (!stream->Read(&msg) || !msg.has_registered()) {
      final_status_ = stream->Finish();
      gone_.Notify();
      return;
    }
    {
      absl::MutexLock l(&mu_);
      registered_msg_ = msg.registered();
    }
    registered_.Notify();
    const bool samples = script_.pp_stage + 1 == script_.pp_size && script_.tp_rank == 0;
    std::map<uint64_t, Seq> seqs;
    bool leaving = false, shutdown = false;
    while (stream->Read(&msg)) {
      if (msg.has_shutdown()) {
        absl::MutexLock l(&mu_);
        shutdown_reason_ = msg.shutdown().reason();
        shutdown = true;
        break;
      }
      if (leaving) {
        plans_after_leave_++;
        continue;
      }
      const w::StepPlan& plan = msg.step_plan();
      const int step = ++steps_;
      if (step == script_.die_at_step) {
        ctx_.TryCancel();
        break;
      }
      if (step == script_.hang_at_step) {
        w::WorkerMessage hb;
        hb.mutable_heartbeat()->set_last_completed_step_id(plan.step_id() - 1);
        while (stream->Write(hb)) absl::SleepFor(absl::Milliseconds(100));
        break;
      }
      if (step == script_.leave_at_step) {
        w::WorkerMessage leave;
        leave.mutable_leave()->set_reason(script_.leave_reason);
        leave.mutable_leave()->set_last_completed_step_id(plan.step_id() - 1);
        stream->Write(leave);
        leaving = true;
        left_.Notify();
        continue;
      }
      if (plan.step_id() != static_cast<uint64_t>(step)) Error(absl::StrCat("step_id ", plan.step_id(), " != ", step));
      for (uint64_t id : plan.finished_seq_ids()) {
        seqs.erase(id);
        absl::MutexLock l(&mu_);
        finished_.insert(id);
      }
      for (uint64_t id : plan.preempted_seq_ids()) {
        if (!seqs.erase(id)) Error(absl::StrCat("preempted unknown ", id));
        preemptions_++;
      }
      std::vector<std::pair<uint64_t, uint32_t>> scheduled;
      for (const auto& ns : plan.new_sequences()) {
        if (seqs.count(ns.seq_id())) Error(absl::StrCat("new sequence ", ns.seq_id(), " already held"));
        Seq s;
        s.tokens.assign(ns.token_ids().begin(), ns.token_ids().end());
        s.blocks.assign(ns.block_ids().begin(), ns.block_ids().end());
        s.computed = ns.num_computed_tokens();
        if (ns.num_sampled_before() != s.tokens.size() - ns.num_prompt_tokens()) Error("num_sampled_before");
        seqs[ns.seq_id()] = std::move(s);
        scheduled.push_back({ns.seq_id(), ns.num_scheduled_tokens()});
        seqs_seen_++;
      }
      for (const auto& rs : plan.running_sequences()) {
        auto it = seqs.find(rs.seq_id());
        if (it == seqs.end()) {
          Error(absl::StrCat("running unknown ", rs.seq_id()));
          continue;
        }
        it->second.tokens.insert(it->second.tokens.end(), rs.new_token_ids().begin(), rs.new_token_ids().end());
        it->second.blocks.insert(it->second.blocks.end(), rs.new_block_ids().begin(), rs.new_block_ids().end());
        scheduled.push_back({rs.seq_id(), rs.num_scheduled_tokens()});
      }
      // Blocks: none shared between live sequences, none the null block, enough for the computed tokens.
      std::set<uint32_t> used;
      for (const auto& [id, s] : seqs) {
        for (uint32_t b : s.blocks) {
          if (b == 0 || b >= static_cast<uint32_t>(script_.kv_blocks)) Error(absl::StrCat("bad block ", b));
          used.insert(b);  // shared full blocks are prefix-cache hits
        }
      }
      w::WorkerMessage out;
      auto* res = out.mutable_step_result();
      res->set_step_id(plan.step_id());
      for (const auto& [id, n] : scheduled) {
        Seq& s = seqs[id];
        s.computed += n;
        if (s.computed > s.tokens.size()) Error(absl::StrCat("seq ", id, " computes beyond its tokens"));
        if (s.blocks.size() * kBlock < s.computed) Error(absl::StrCat("seq ", id, " lacks blocks"));
        if (s.computed == s.tokens.size()) {
          auto* t = res->add_tokens();
          t->set_seq_id(id);
          t->set_token_id(samples ? Rule(s.tokens) : 7);
          t->set_logprob(-1.0f);
        }
      }
      if (step == script_.bad_token_at_step && res->tokens_size() > 0) {
        res->mutable_tokens(0)->set_token_id(script_.bad_token_id);
      }
      if (step == script_.unscheduled_token_at_step) {
        auto* t = res->add_tokens();
        t->set_seq_id(987654321);
        t->set_token_id(100);
      }
      absl::SleepFor(script_.step_delay);
      if (!stream->Write(out)) break;
    }
    // Half-close after Shutdown, so the coordinator's handler ends and Finish
    // returns; otherwise the stream is already over.
    if (shutdown) stream->WritesDone();
    final_status_ = stream->Finish();
    gone_.Notify();
  }

  WorkerScript script_;
  const ServedModel& model_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ClientContext ctx_;
  absl::Notification registered_, gone_, left_;
  std::atomic<int> steps_{0}, seqs_seen_{0}, preemptions_{0}, plans_after_leave_{0};
  std::string shutdown_reason_;  // guarded by mu_
  grpc::Status final_status_;
  absl::Mutex mu_;
  std::vector<std::string> errors_;
  std::set<uint64_t> finished_;
  w::Registered registered_msg_;
  std::thread thread_;
};

class ClusterTest : public ::testing::Test {
 protected:
  void Start(int replicas, int max_num_seqs = 8, int max_queue = 64, int tp = 1, int pp = 1) {
    ClusterConfig cfg;
    cfg.tp_size = tp;
    cfg.pp_size = pp;
    cfg.rendezvous_retired = [this](const std::string& prefix) {
      absl::MutexLock l(&retired_mu_);
      retired_.push_back(prefix);
    };
    cfg.models.push_back({"smol", STRATA_DEFAULT_MODEL, replicas, fingerprint_});
    cfg.max_context = 512;
    cfg.max_queue = max_queue;
    cfg.scheduler.block_size = kBlock;
    cfg.scheduler.max_num_seqs = max_num_seqs;
    cfg.scheduler.max_batched_tokens = 256;
    metrics_ = *Metrics::Create("");
    auto c = Cluster::Create(cfg, metrics_.get());
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *std::move(c);
    service_ = std::make_unique<WorkerLinkService>(cluster_.get(), timeouts_, &admission_);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    addr_ = absl::StrCat("127.0.0.1:", port);
    model_ = *cluster_->FindModel("smol");
  }
  void TearDown() override {
    workers_.clear();
    if (cluster_) cluster_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  // A rank of a TP x PP replica: does not wait for Registered (that comes
  // when the whole group is there).
  ScriptedWorker* AddRank(WorkerScript s) {
    workers_.push_back(std::make_unique<ScriptedWorker>(addr_, s, *model_));
    return workers_.back().get();
  }
  std::vector<std::string> Retired() {
    absl::MutexLock l(&retired_mu_);
    return retired_;
  }
  ScriptedWorker* AddWorker(WorkerScript s) {
    workers_.push_back(std::make_unique<ScriptedWorker>(addr_, s, *model_));
    EXPECT_TRUE(workers_.back()->WaitRegistered());
    // Wait until the replica's loop adopted it.
    for (int i = 0; i < 500 && !ReplicaReady(s.replica); ++i) absl::SleepFor(absl::Milliseconds(10));
    return workers_.back().get();
  }
  bool ReplicaReady(int r) {
    return metrics_->Render().find(absl::StrCat("strata_replica_ready{replica=\"", r, "\"} 1")) != std::string::npos;
  }
  int Gauge(const std::string& name, int replica) {
    const std::string text = metrics_->Render();
    const std::string key = absl::StrCat(name, "{replica=\"", replica, "\"} ");
    size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stoi(text.substr(at + key.size()));
  }
  GenerationRequest Req(std::vector<int32_t> prompt, int max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    return r;
  }
  struct Outcome {
    absl::Status status;
    std::vector<int32_t> tokens;
    std::string text;
    FinishReason finish = FinishReason::kNone;
    int32_t completion_tokens = 0;
  };
  static Outcome ReadAll(RequestStream& s, absl::Duration limit = absl::Seconds(30)) {
    Outcome o;
    const absl::Time end = absl::Now() + limit;
    while (absl::Now() < end) {
      auto n = s.Next(absl::Milliseconds(50));
      if (!n.ok()) {
        o.status = n.status();
        return o;
      }
      if (!n->has_value()) continue;
      o.tokens.insert(o.tokens.end(), (*n)->token_ids.begin(), (*n)->token_ids.end());
      o.text += (*n)->text;
      o.completion_tokens = (*n)->completion_tokens;
      if ((*n)->finish != FinishReason::kNone) {
        o.finish = (*n)->finish;
        return o;
      }
    }
    o.status = absl::DeadlineExceededError("test: stream did not end");
    return o;
  }
  // Reads streams[i] (requests for Prompt(30, i), 30 tokens) to their ends.
  // One that ends OK must carry exactly the scripted tokens; one that fails
  // must be UNAVAILABLE with each of `error_has` in its message and must have
  // streamed something (one that streamed nothing is retried, not failed).
  // Returns {ok, failed}.
  std::pair<int, int> Tally(const std::vector<std::shared_ptr<RequestStream>>& streams,
                            const std::vector<std::string>& error_has) {
    int ok = 0, failed = 0;
    for (size_t i = 0; i < streams.size(); ++i) {
      Outcome o = ReadAll(*streams[i]);
      if (o.status.ok()) {
        ++ok;
        EXPECT_EQ(o.tokens, Expected(Prompt(30, static_cast<int>(i)), 30)) << i;
        continue;
      }
      ++failed;
      EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
      for (const std::string& part : error_has) {
        EXPECT_NE(o.status.message().find(part), absl::string_view::npos) << o.status;
      }
      EXPECT_FALSE(o.tokens.empty()) << "a request that streamed nothing must be retried, not failed";
    }
    return {ok, failed};
  }
  static std::vector<int32_t> Prompt(int n, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(200 + (i * 7 + salt * 13) % 5000);
    return p;
  }

  WorkerLinkTimeouts timeouts_{absl::Seconds(5), absl::Seconds(300)};  // set before Start
  WorkerAdmission admission_ = WorkerAdmission::Open();                 // set before Start
  std::string fingerprint_ = "off";                                      // set before Start
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<WorkerLinkService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string addr_;
  const ServedModel* model_ = nullptr;
  std::vector<std::unique_ptr<ScriptedWorker>> workers_;
  absl::Mutex retired_mu_;
  std::vector<std::string> retired_;
};

}  // namespace strata::coordinator::test
