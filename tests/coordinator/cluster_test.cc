// The cluster (replicas' engine loops, router, limits, worker link) over real
// gRPC, with scripted workers: each test worker speaks the real WorkerLink
// protocol, checks every StepPlan against the protocol's rules (known ids,
// block tables covering the computed tokens, no block shared by two live
// sequences, tokens only appended) and "samples" by a fixed rule of the
// sequence's tokens, so the expected output of any request is known exactly.
// The real model runs in the worker's own tests and the integration tests.
#include "coordinator/cluster.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "absl/synchronization/notification.h"
#include "coordinator/metrics.h"
#include "coordinator/worker_link_service.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "strata/v1/worker.grpc.pb.h"

namespace strata::coordinator {
namespace {

namespace w = ::strata::worker::v1;

constexpr int32_t kBlock = 16;

// The scripted worker's sampling rule (never an end-of-generation id of SmolLM2: those are < 100).
int32_t Rule(const std::vector<int32_t>& tokens) {
  int64_t h = 0;
  for (int32_t t : tokens) h = (h * 31 + t) % 1000003;
  return 100 + static_cast<int32_t>((h + static_cast<int64_t>(tokens.size())) % 400);
}

std::vector<int32_t> Expected(std::vector<int32_t> prompt, int n) {
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
  // Place in a TP x PP replica. Only the sampling rank (last stage, tp 0)
  // answers the rule's tokens; the others answer wrong ones, which the
  // coordinator must ignore.
  uint32_t tp_rank = 0, tp_size = 1, pp_stage = 0, pp_size = 1;
  std::string fingerprint = "fp";
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
    while (stream->Read(&msg)) {
      if (msg.has_shutdown()) break;
      const w::StepPlan& plan = msg.step_plan();
      const int step = ++steps_;
      if (step == script_.die_at_step) {
        ctx_.TryCancel();
        break;
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
      absl::SleepFor(script_.step_delay);
      if (!stream->Write(out)) break;
    }
    gone_.Notify();
  }

  WorkerScript script_;
  const ServedModel& model_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ClientContext ctx_;
  absl::Notification registered_, gone_;
  std::atomic<int> steps_{0}, seqs_seen_{0}, preemptions_{0};
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
    cfg.models.push_back({"smol", STRATA_DEFAULT_MODEL, replicas});
    cfg.max_context = 512;
    cfg.max_queue = max_queue;
    cfg.scheduler.block_size = kBlock;
    cfg.scheduler.max_num_seqs = max_num_seqs;
    cfg.scheduler.max_batched_tokens = 256;
    metrics_ = *Metrics::Create("");
    auto c = Cluster::Create(cfg, metrics_.get());
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *std::move(c);
    service_ = std::make_unique<WorkerLinkService>(cluster_.get(), absl::Seconds(5));
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
  static Outcome Drain(RequestStream& s, absl::Duration limit = absl::Seconds(30)) {
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
  static std::vector<int32_t> Prompt(int n, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(200 + (i * 7 + salt * 13) % 5000);
    return p;
  }

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

TEST_F(ClusterTest, OneRequestStreamsTheWorkersTokensAndText) {
  Start(1);
  EXPECT_FALSE(cluster_->IsReady());
  auto unready = cluster_->Submit("smol", Req(Prompt(5, 1), 4));
  EXPECT_EQ(unready.status().code(), absl::StatusCode::kUnavailable);
  ScriptedWorker* w = AddWorker({});
  EXPECT_TRUE(cluster_->IsReady());
  auto s = cluster_->Submit("", Req(Prompt(40, 1), 12));
  ASSERT_TRUE(s.ok()) << s.status();
  Outcome o = Drain(**s);
  ASSERT_TRUE(o.status.ok()) << o.status;
  EXPECT_EQ(o.tokens, Expected(Prompt(40, 1), 12));
  // The text is the UTF-8-safe incremental decoding of exactly those tokens.
  IncrementalDetokenizer detok(model_->tokenizer, /*skip_special=*/true);
  std::string text;
  for (int32_t t : o.tokens) text += detok.Push(t);
  text += detok.Flush();
  EXPECT_EQ(o.text, text);
  EXPECT_FALSE(o.text.empty());
  EXPECT_EQ(o.finish, FinishReason::kLength);
  EXPECT_EQ(o.completion_tokens, 12);
  EXPECT_TRUE(w->errors().empty()) << w->errors()[0];
  // Finished sequences are dropped at the workers and their blocks freed.
  for (int i = 0; i < 100 && Gauge("strata_kv_blocks_free", 0) != 256; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Gauge("strata_kv_blocks_free", 0), 256);
}

TEST_F(ClusterTest, ThirtyTwoConcurrentRequestsOnTwoReplicasAllCorrect) {
  Start(2, /*max_num_seqs=*/6);
  ScriptedWorker* w0 = AddWorker({0, 257, absl::Milliseconds(1)});
  ScriptedWorker* w1 = AddWorker({1, 257, absl::Milliseconds(1)});
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 32; ++i) {
    auto s = cluster_->Submit("smol", Req(Prompt(10 + i * 3, i), 5 + i % 7));
    ASSERT_TRUE(s.ok()) << s.status();
    streams.push_back(*s);
  }
  for (int i = 0; i < 32; ++i) {
    Outcome o = Drain(*streams[i]);
    ASSERT_TRUE(o.status.ok()) << i << ": " << o.status;
    EXPECT_EQ(o.tokens, Expected(Prompt(10 + i * 3, i), 5 + i % 7)) << i;
  }
  EXPECT_GT(w0->seqs_seen(), 4);
  EXPECT_GT(w1->seqs_seen(), 4);
  EXPECT_TRUE(w0->errors().empty()) << w0->errors()[0];
  EXPECT_TRUE(w1->errors().empty()) << w1->errors()[0];
}

TEST_F(ClusterTest, AShortRequestJoinsAndLeavesWhileALongOneRuns) {
  Start(1);
  ScriptedWorker* w = AddWorker({0, 257, absl::Milliseconds(2)});
  auto long_req = *cluster_->Submit("smol", Req(Prompt(20, 1), 300));
  auto first = long_req->Next(absl::Seconds(10));
  ASSERT_TRUE(first.ok() && first->has_value());
  auto short_req = *cluster_->Submit("smol", Req(Prompt(30, 2), 5));
  Outcome s = Drain(*short_req);
  ASSERT_TRUE(s.status.ok()) << s.status;
  EXPECT_EQ(s.tokens, Expected(Prompt(30, 2), 5));
  // The long request is still running: continuous batching, not run-to-completion.
  EXPECT_LT(w->steps(), 300);
  Outcome l = Drain(*long_req);
  ASSERT_TRUE(l.status.ok()) << l.status;
  EXPECT_EQ(l.tokens.size() + 1, 300u);  // the first token was read above
}

TEST_F(ClusterTest, RequestsGoToTheReplicaCachingTheirPrefix) {
  Start(2);
  ScriptedWorker* w0 = AddWorker({0, 257});
  ScriptedWorker* w1 = AddWorker({1, 257});
  std::vector<int32_t> system = Prompt(64, 77);  // 4 full blocks
  auto with_suffix = [&](int salt) {
    std::vector<int32_t> p = system;
    for (int i = 0; i < 5; ++i) p.push_back(300 + salt * 7 + i);
    return p;
  };
  ASSERT_TRUE(Drain(**cluster_->Submit("smol", Req(with_suffix(0), 3))).status.ok());
  const bool on0 = w0->seqs_seen() == 1;
  ASSERT_EQ(w0->seqs_seen() + w1->seqs_seen(), 1);
  // One at a time (equal load, which alone would alternate): all follow the cache.
  for (int i = 1; i <= 4; ++i) {
    Outcome o = Drain(**cluster_->Submit("smol", Req(with_suffix(i), 3)));
    ASSERT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.tokens, Expected(with_suffix(i), 3));
  }
  EXPECT_EQ((on0 ? w0 : w1)->seqs_seen(), 5);
  EXPECT_EQ((on0 ? w1 : w0)->seqs_seen(), 0);
  // Unrelated prompts still spread over both.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Drain(**cluster_->Submit("smol", Req(Prompt(20, 500 + i), 2))).status.ok());
  EXPECT_GT((on0 ? w1 : w0)->seqs_seen(), 0);
}

TEST_F(ClusterTest, PreemptionWhenBlocksRunOutKeepsOutputsExact) {
  Start(1, /*max_num_seqs=*/8);
  // 13 usable blocks (208 tokens) for 6 sequences that grow to ~60 tokens each.
  ScriptedWorker* w = AddWorker({0, 14});
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 6; ++i) streams.push_back(*cluster_->Submit("smol", Req(Prompt(20, i), 40)));
  for (int i = 0; i < 6; ++i) {
    Outcome o = Drain(*streams[i]);
    ASSERT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.tokens, Expected(Prompt(20, i), 40)) << i;
  }
  EXPECT_GT(w->preemptions(), 0);
  EXPECT_TRUE(w->errors().empty()) << w->errors()[0];
  // The server counts what the worker saw.
  const std::string text = metrics_->Render();
  const size_t at = text.find("\nstrata_preemptions_total ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(std::stoi(text.substr(at + 26)), w->preemptions());
}

TEST_F(ClusterTest, CancelFreesBlocksAndDropsTheSequenceAtTheWorker) {
  Start(1);
  ScriptedWorker* w = AddWorker({0, 257, absl::Milliseconds(5)});
  auto s = *cluster_->Submit("smol", Req(Prompt(100, 3), 400));
  auto first = s->Next(absl::Seconds(10));
  ASSERT_TRUE(first.ok() && first->has_value());
  for (int i = 0; i < 200 && Gauge("strata_kv_blocks_free", 0) == 256; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_LT(Gauge("strata_kv_blocks_free", 0), 256);  // its blocks are held (gauges trail the chunk slightly)
  s->Cancel();
  for (int i = 0; i < 200 && Gauge("strata_kv_blocks_free", 0) != 256; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Gauge("strata_kv_blocks_free", 0), 256);
  // The next plan tells the worker to drop it.
  auto again = *cluster_->Submit("smol", Req(Prompt(5, 4), 2));
  ASSERT_TRUE(Drain(*again).status.ok());
  EXPECT_EQ(w->finished().count(1), 1u);
}

TEST_F(ClusterTest, FullQueueIsResourceExhausted) {
  Start(1, /*max_num_seqs=*/1, /*max_queue=*/2);
  AddWorker({0, 257, absl::Milliseconds(20)});
  std::vector<std::shared_ptr<RequestStream>> held;
  absl::Status rejected;
  for (int i = 0; i < 6 && rejected.ok(); ++i) {
    auto s = cluster_->Submit("smol", Req(Prompt(10, i), 300));
    if (s.ok()) held.push_back(*s); else rejected = s.status();
  }
  EXPECT_EQ(rejected.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(rejected.message().find("max_queue = 2"), absl::string_view::npos) << rejected;
  EXPECT_LE(held.size(), 4u);
  for (auto& s : held) s->Cancel();
}

TEST_F(ClusterTest, DeadlineEndsTheRequest) {
  Start(1);
  AddWorker({0, 257, absl::Milliseconds(10)});
  GenerationRequest r = Req(Prompt(10, 5), 400);
  r.deadline = absl::Now() + absl::Milliseconds(150);
  auto s = *cluster_->Submit("smol", r);
  Outcome o = Drain(*s);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kDeadlineExceeded) << o.status;
  for (int i = 0; i < 200 && Gauge("strata_kv_blocks_free", 0) != 256; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Gauge("strata_kv_blocks_free", 0), 256);
}

TEST_F(ClusterTest, BadRequestsNameTheFieldOrLimit) {
  Start(1);
  AddWorker({});
  auto code_and = [&](GenerationRequest r, absl::string_view model, absl::StatusCode code, absl::string_view text) {
    auto s = cluster_->Submit(model, std::move(r));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), code) << s.status();
    EXPECT_NE(s.status().message().find(text), absl::string_view::npos) << s.status();
  };
  code_and(Req({}, 4), "smol", absl::StatusCode::kInvalidArgument, "prompt");
  code_and(Req(Prompt(600, 1), 4), "smol", absl::StatusCode::kInvalidArgument, "max_prompt_tokens = 511");
  code_and(Req({1, 2, 99999999}, 4), "smol", absl::StatusCode::kInvalidArgument, "token id 99999999");
  code_and(Req(Prompt(10, 1), 600), "smol", absl::StatusCode::kInvalidArgument, "max_tokens");
  code_and(Req(Prompt(500, 1), 100), "smol", absl::StatusCode::kInvalidArgument, "context length of 512");
  GenerationRequest t = Req(Prompt(10, 1), 4);
  t.sampling.top_p = 0;
  code_and(t, "smol", absl::StatusCode::kInvalidArgument, "top_p");
  code_and(Req(Prompt(10, 1), 4), "nope", absl::StatusCode::kNotFound, "'nope'");
}

TEST_F(ClusterTest, WorkerDeathRetriesUnstreamedRequestsElsewhereAndFailsStreamedOnes) {
  Start(2, /*max_num_seqs=*/4);
  // Replica 0's worker dies on its 4th step; replica 1 is healthy.
  ScriptedWorker* w0 = AddWorker({0, 257, absl::Milliseconds(5), /*die_at_step=*/4});
  AddWorker({1, 257, absl::Milliseconds(5)});
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) streams.push_back(*cluster_->Submit("smol", Req(Prompt(30, i), 30)));
  int ok = 0, unavailable = 0;
  for (int i = 0; i < 8; ++i) {
    Outcome o = Drain(*streams[i]);
    if (o.status.ok()) {
      ++ok;
      EXPECT_EQ(o.tokens, Expected(Prompt(30, i), 30)) << i;
    } else {
      EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
      EXPECT_FALSE(o.tokens.empty()) << "a request that streamed nothing must be retried, not failed";
      ++unavailable;
    }
  }
  EXPECT_TRUE(w0->WaitGone());
  EXPECT_EQ(ok + unavailable, 8);
  EXPECT_GE(ok, 4);
  EXPECT_GT(unavailable, 0);
  // The replica comes back when a new worker registers for it.
  for (int i = 0; i < 200 && ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(ReplicaReady(0));
  AddWorker({0, 257});
  EXPECT_TRUE(ReplicaReady(0));
  auto s = *cluster_->Submit("smol", Req(Prompt(7, 9), 3));
  EXPECT_TRUE(Drain(*s).status.ok());
}

}  // namespace
}  // namespace strata::coordinator

namespace strata::coordinator {
namespace {

WorkerScript Rank(uint32_t tp_rank, uint32_t tp_size, uint32_t pp_stage, uint32_t pp_size) {
  WorkerScript s;
  s.tp_rank = tp_rank;
  s.tp_size = tp_size;
  s.pp_stage = pp_stage;
  s.pp_size = pp_size;
  s.step_delay = absl::Milliseconds(1);
  return s;
}

// A 2 x 2 replica: Registered only once all four ranks are there, with one
// rendezvous and every rank's peer address in world-rank order; every rank
// gets every plan; tokens come from the sampling rank only.
TEST_F(ClusterTest, TensorPipelineGroupFormsThenServesFromTheSamplingRank) {
  Start(1, 8, 64, /*tp=*/2, /*pp=*/2);
  std::vector<ScriptedWorker*> ranks;
  ranks.push_back(AddRank(Rank(1, 2, 1, 2)));  // the sampling rank is (stage 1, tp 0)
  ranks.push_back(AddRank(Rank(0, 2, 0, 2)));
  ranks.push_back(AddRank(Rank(1, 2, 0, 2)));
  absl::SleepFor(absl::Milliseconds(300));
  for (ScriptedWorker* r : ranks) EXPECT_FALSE(r->registered());
  EXPECT_FALSE(cluster_->IsReady());
  ranks.push_back(AddRank(Rank(0, 2, 1, 2)));
  for (ScriptedWorker* r : ranks) ASSERT_TRUE(r->WaitRegistered());
  for (int i = 0; i < 500 && !ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(cluster_->IsReady());
  for (ScriptedWorker* r : ranks) {
    const w::Registered reg = r->registration();
    EXPECT_EQ(reg.collective_rendezvous(), "replica-0/gen-1");
    ASSERT_EQ(reg.peer_addresses_size(), 4);
    EXPECT_EQ(reg.peer_addresses(0), "peer-0-0");
    EXPECT_EQ(reg.peer_addresses(1), "peer-0-1");
    EXPECT_EQ(reg.peer_addresses(2), "peer-1-0");
    EXPECT_EQ(reg.peer_addresses(3), "peer-1-1");
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 6; ++i) streams.push_back(*cluster_->Submit("smol", Req(Prompt(20 + 9 * i, i), 6 + i)));
  for (int i = 0; i < 6; ++i) {
    Outcome o = Drain(*streams[i]);
    ASSERT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.tokens, Expected(Prompt(20 + 9 * i, i), 6 + i)) << i;
  }
  for (ScriptedWorker* r : ranks) {
    EXPECT_TRUE(r->errors().empty()) << r->errors()[0];
    EXPECT_EQ(r->steps(), ranks[0]->steps());
  }
  EXPECT_GT(ranks[0]->steps(), 6);
}

// One rank dying ends the whole group: its streaming requests fail with
// UNAVAILABLE, the other rank's stream is ended, the old rendezvous keys are
// retired, and a new pair of ranks forms generation 2 and serves.
TEST_F(ClusterTest, OneRankDyingEndsTheGroupAndANewGroupServes) {
  Start(1, 8, 64, /*tp=*/2, /*pp=*/1);
  WorkerScript r1 = Rank(1, 2, 0, 1);
  r1.die_at_step = 5;
  ScriptedWorker* a = AddRank(Rank(0, 2, 0, 1));
  ScriptedWorker* b = AddRank(r1);
  ASSERT_TRUE(a->WaitRegistered());
  ASSERT_TRUE(b->WaitRegistered());
  for (int i = 0; i < 500 && !ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  auto s = cluster_->Submit("smol", Req(Prompt(10, 3), 50));
  ASSERT_TRUE(s.ok());
  Outcome o = Drain(**s);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
  EXPECT_FALSE(o.tokens.empty());  // it had streamed, so it is not retried
  EXPECT_TRUE(a->WaitGone());      // the surviving rank was cut off too
  EXPECT_EQ(Retired(), std::vector<std::string>{"replica-0/gen-1/"});
  ScriptedWorker* c = AddRank(Rank(0, 2, 0, 1));
  ScriptedWorker* d = AddRank(Rank(1, 2, 0, 1));
  ASSERT_TRUE(c->WaitRegistered());
  ASSERT_TRUE(d->WaitRegistered());
  EXPECT_EQ(c->registration().collective_rendezvous(), "replica-0/gen-2");
  for (int i = 0; i < 500 && !ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  auto again = cluster_->Submit("smol", Req(Prompt(12, 4), 5));
  ASSERT_TRUE(again.ok());
  Outcome o2 = Drain(**again);
  ASSERT_TRUE(o2.status.ok()) << o2.status;
  EXPECT_EQ(o2.tokens, Expected(Prompt(12, 4), 5));
}

// Registrations that do not fit the replica's layout are refused.
TEST_F(ClusterTest, RanksOutsideTheLayoutOrTwiceAreRefused) {
  Start(1, 8, 64, /*tp=*/2, /*pp=*/1);
  ScriptedWorker* wrong_size = AddRank(Rank(0, 4, 0, 1));
  EXPECT_TRUE(wrong_size->WaitGone());
  EXPECT_FALSE(wrong_size->registered());
  ScriptedWorker* first = AddRank(Rank(0, 2, 0, 1));
  absl::SleepFor(absl::Milliseconds(200));
  ScriptedWorker* twice = AddRank(Rank(0, 2, 0, 1));
  EXPECT_TRUE(twice->WaitGone());
  WorkerScript other_model = Rank(1, 2, 0, 1);
  other_model.fingerprint = "another-file";
  ScriptedWorker* mismatch = AddRank(other_model);
  EXPECT_TRUE(mismatch->WaitGone());
  EXPECT_FALSE(first->registered());
  ScriptedWorker* partner = AddRank(Rank(1, 2, 0, 1));
  EXPECT_TRUE(partner->WaitRegistered());
  EXPECT_TRUE(first->WaitRegistered());
}

}  // namespace
}  // namespace strata::coordinator
