// The cluster (replicas' engine loops, router, limits, worker link) over real
// gRPC, with scripted workers (scripted_worker.h). The real model runs in the
// worker's own tests and the integration tests.
#include "coordinator/cluster.h"

#include "common/tokenizer/incremental_detokenizer.h"
#include "gtest/gtest.h"
#include "tests/coordinator/scripted_worker.h"

namespace strata::coordinator {
namespace {

using namespace ::strata::coordinator::test;  // NOLINT: test helpers

TEST_F(ClusterTest, OneRequestStreamsTheWorkersTokensAndText) {
  Start(1);
  EXPECT_FALSE(cluster_->IsReady());
  auto unready = cluster_->Submit("smol", Req(Prompt(5, 1), 4));
  EXPECT_EQ(unready.status().code(), absl::StatusCode::kUnavailable);
  ScriptedWorker* w = AddWorker({});
  EXPECT_TRUE(cluster_->IsReady());
  auto s = cluster_->Submit("", Req(Prompt(40, 1), 12));
  ASSERT_TRUE(s.ok()) << s.status();
  Outcome o = ReadAll(**s);
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
    Outcome o = ReadAll(*streams[i]);
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
  Outcome s = ReadAll(*short_req);
  ASSERT_TRUE(s.status.ok()) << s.status;
  EXPECT_EQ(s.tokens, Expected(Prompt(30, 2), 5));
  // The long request is still running: continuous batching, not run-to-completion.
  EXPECT_LT(w->steps(), 300);
  Outcome l = ReadAll(*long_req);
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
  ASSERT_TRUE(ReadAll(**cluster_->Submit("smol", Req(with_suffix(0), 3))).status.ok());
  const bool on0 = w0->seqs_seen() == 1;
  ASSERT_EQ(w0->seqs_seen() + w1->seqs_seen(), 1);
  // One at a time (equal load, which alone would alternate): all follow the cache.
  for (int i = 1; i <= 4; ++i) {
    Outcome o = ReadAll(**cluster_->Submit("smol", Req(with_suffix(i), 3)));
    ASSERT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.tokens, Expected(with_suffix(i), 3));
  }
  EXPECT_EQ((on0 ? w0 : w1)->seqs_seen(), 5);
  EXPECT_EQ((on0 ? w1 : w0)->seqs_seen(), 0);
  // Unrelated prompts still spread over both.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ReadAll(**cluster_->Submit("smol", Req(Prompt(20, 500 + i), 2))).status.ok());
  EXPECT_GT((on0 ? w1 : w0)->seqs_seen(), 0);
}

TEST_F(ClusterTest, PreemptionWhenBlocksRunOutKeepsOutputsExact) {
  Start(1, /*max_num_seqs=*/8);
  // 13 usable blocks (208 tokens) for 6 sequences that grow to ~60 tokens each.
  ScriptedWorker* w = AddWorker({0, 14});
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 6; ++i) streams.push_back(*cluster_->Submit("smol", Req(Prompt(20, i), 40)));
  for (int i = 0; i < 6; ++i) {
    Outcome o = ReadAll(*streams[i]);
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
  ASSERT_TRUE(ReadAll(*again).status.ok());
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
  Outcome o = ReadAll(*s);
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
  const auto [ok, unavailable] = Tally(streams, {});
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
  EXPECT_TRUE(ReadAll(*s).status.ok());
}

// A worker wedged inside a step (a hung device or collective) keeps sending
// heartbeats, so the liveness timeout never fires; the step timeout does: its
// requests that streamed nothing run on the other replica, the others end
// with UNAVAILABLE naming the step and the flag, and none is held forever.
TEST_F(ClusterTest, AWorkerWedgedInAStepIsDroppedAfterTheStepTimeout) {
  timeouts_.step = absl::Seconds(1);
  Start(2, /*max_num_seqs=*/4);
  WorkerScript wedged{0, 257, absl::Milliseconds(5)};
  wedged.hang_at_step = 4;
  ScriptedWorker* w0 = AddWorker(wedged);
  AddWorker({1, 257, absl::Milliseconds(5)});
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) streams.push_back(*cluster_->Submit("smol", Req(Prompt(30, i), 30)));
  const auto [ok, unavailable] = Tally(streams, {"did not answer step 4 within 1s", "--step-timeout-s"});
  EXPECT_TRUE(w0->WaitGone());  // its stream was cancelled
  EXPECT_EQ(ok + unavailable, 8);
  EXPECT_GE(ok, 4);
  EXPECT_GT(unavailable, 0);
  for (int i = 0; i < 200 && ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(ReplicaReady(0));
}

// A worker that leaves (WorkerLink Leave, as strata-worker does on SIGTERM)
// is taken out at once, not after the liveness timeout: its requests that
// streamed nothing run on the other replica, the others end with UNAVAILABLE
// naming the worker, it gets Shutdown as the answer, and its KV state is gone.
TEST_F(ClusterTest, AWorkerThatLeavesIsTakenOutAtOnceAndNamedInTheErrors) {
  Start(2, /*max_num_seqs=*/4);
  WorkerScript leaver{0, 257, absl::Milliseconds(5)};
  leaver.leave_at_step = 6;
  leaver.leave_reason = "SIGTERM received";
  ScriptedWorker* w0 = AddWorker(leaver);
  ScriptedWorker* w1 = AddWorker({1, 257, absl::Milliseconds(5)});
  const std::string w0_id = w0->registration().worker_id();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) streams.push_back(*cluster_->Submit("smol", Req(Prompt(30, i), 30)));
  ASSERT_TRUE(w0->WaitLeft());
  const absl::Time left_at = absl::Now();
  // The fixture's liveness timeout is 5 s and the leaver answers nothing after
  // Leave: only the Leave itself can take the replica out this fast.
  while (ReplicaReady(0) && absl::Now() - left_at < absl::Seconds(5)) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_LT(absl::Now() - left_at, absl::Seconds(1));
  const auto [ok, unavailable] =
      Tally(streams, {absl::StrCat("replica 0: worker ", w0_id, " left the replica (SIGTERM received)")});
  EXPECT_EQ(ok + unavailable, 8);
  EXPECT_GE(ok, 4);
  EXPECT_GT(unavailable, 0);
  EXPECT_TRUE(w0->WaitGone());
  EXPECT_EQ(w0->shutdown_reason(), "left replica 0");
  EXPECT_NE(metrics_->Render().find("strata_workers_left_total{replica=\"0\"} 1"), std::string::npos);
  // The other replica serves on and holds no blocks once its requests ended.
  Outcome after = ReadAll(**cluster_->Submit("smol", Req(Prompt(12, 50), 4)));
  ASSERT_TRUE(after.status.ok()) << after.status;
  EXPECT_EQ(after.tokens, Expected(Prompt(12, 50), 4));
  for (int i = 0; i < 200 && Gauge("strata_kv_blocks_free", 1) != 256; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Gauge("strata_kv_blocks_free", 1), 256);
  EXPECT_EQ(Gauge("strata_kv_blocks_used", 0), 0);
  EXPECT_TRUE(w1->errors().empty()) << w1->errors()[0];
  // A fresh worker brings replica 0 back.
  AddWorker({0, 257});
  EXPECT_TRUE(ReplicaReady(0));
}

}  // namespace
}  // namespace strata::coordinator

namespace strata::coordinator {
namespace {

using namespace ::strata::coordinator::test;  // NOLINT: test helpers

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
    Outcome o = ReadAll(*streams[i]);
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
  Outcome o = ReadAll(**s);
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
  Outcome o2 = ReadAll(**again);
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

// One rank of a TP group leaving ends the whole group through the failure
// path (the other rank is cut off and re-registers, the rendezvous keys are
// retired), and the request's error names the rank that left, not the one
// the coordinator cut off.
TEST_F(ClusterTest, ARankThatLeavesEndsItsGroupAndTheErrorNamesIt) {
  Start(1, 8, 64, /*tp=*/2, /*pp=*/1);
  WorkerScript r1 = Rank(1, 2, 0, 1);
  r1.leave_at_step = 5;
  ScriptedWorker* a = AddRank(Rank(0, 2, 0, 1));
  ScriptedWorker* b = AddRank(r1);
  ASSERT_TRUE(a->WaitRegistered());
  ASSERT_TRUE(b->WaitRegistered());
  for (int i = 0; i < 500 && !ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  auto s = cluster_->Submit("smol", Req(Prompt(10, 3), 50));
  ASSERT_TRUE(s.ok());
  Outcome o = ReadAll(**s);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
  EXPECT_NE(o.status.message().find(absl::StrCat("worker ", b->registration().worker_id(),
                                                 " left the replica (test leave)")),
            absl::string_view::npos)
      << o.status;
  EXPECT_TRUE(a->WaitGone());
  EXPECT_TRUE(b->WaitGone());
  EXPECT_EQ(b->shutdown_reason(), "left replica 0");
  EXPECT_EQ(a->shutdown_reason(), "");  // cut off like any rank of a failed group
  EXPECT_EQ(Retired(), std::vector<std::string>{"replica-0/gen-1/"});
  EXPECT_FALSE(ReplicaReady(0));
}

}  // namespace
}  // namespace strata::coordinator
