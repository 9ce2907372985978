// Worker admission and rogue workers over real gRPC (scripted_worker.h): the
// join token, Register bounds, the model fingerprint, and workers whose
// StepResults break the protocol. None of them may crash the coordinator or
// put their tokens into a client's answer.
#include "coordinator/worker_admission.h"

#include <cstdio>

#include "common/format/model_fingerprint.h"
#include "gtest/gtest.h"
#include "tests/coordinator/scripted_worker.h"

namespace strata::coordinator {
namespace {

using namespace ::strata::coordinator::test;  // NOLINT: test helpers

constexpr char kToken[] = "0123456789abcdef-join-token";

TEST_F(ClusterTest, WithAJoinTokenWorkersWithoutOrWithAWrongOneAreRefused) {
  admission_ = WorkerAdmission::WithJoinToken(kToken);
  Start(1);
  WorkerScript none;
  ScriptedWorker* anonymous = AddRank(none);
  ASSERT_TRUE(anonymous->WaitGone());
  EXPECT_FALSE(anonymous->registered());
  EXPECT_EQ(anonymous->final_status().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(anonymous->final_status().error_message().find("x-strata-join-token"), std::string::npos);

  WorkerScript wrong;
  wrong.join_token = "0123456789abcdef-not-the-token";
  ScriptedWorker* impostor = AddRank(wrong);
  ASSERT_TRUE(impostor->WaitGone());
  EXPECT_EQ(impostor->final_status().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The message never echoes a token, the presented one or the real one.
  EXPECT_EQ(impostor->final_status().error_message().find("not-the-token"), std::string::npos);
  EXPECT_EQ(impostor->final_status().error_message().find(kToken), std::string::npos);
  EXPECT_FALSE(cluster_->IsReady());

  WorkerScript good;
  good.join_token = kToken;
  ScriptedWorker* w = AddWorker(good);
  EXPECT_TRUE(w->registered());
  auto s = cluster_->Submit("smol", Req(Prompt(8, 1), 4));
  ASSERT_TRUE(s.ok()) << s.status();
  Outcome o = ReadAll(**s);
  ASSERT_TRUE(o.status.ok()) << o.status;
  EXPECT_EQ(o.tokens, Expected(Prompt(8, 1), 4));
}

TEST_F(ClusterTest, AHugeKvCapacityIsRefusedAndTheCoordinatorKeepsServing) {
  Start(2);
  WorkerScript huge;
  huge.kv_blocks = 2147483647;
  ScriptedWorker* rogue = AddRank(huge);
  ASSERT_TRUE(rogue->WaitGone());
  EXPECT_FALSE(rogue->registered());
  EXPECT_EQ(rogue->final_status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(rogue->final_status().error_message().find("kv_capacity_blocks 2147483647"), std::string::npos)
      << rogue->final_status().error_message();
  ScriptedWorker* w = AddWorker({1, 257});
  EXPECT_TRUE(w->registered());
  auto s = cluster_->Submit("smol", Req(Prompt(8, 2), 3));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(ReadAll(**s).tokens, Expected(Prompt(8, 2), 3));
}

TEST_F(ClusterTest, AWorkerForOtherWeightsIsRefusedNamingBothFingerprints) {
  const absl::Time t0 = absl::Now();
  auto expected = ModelFingerprint(STRATA_DEFAULT_MODEL);
  ASSERT_TRUE(expected.ok()) << expected.status();
  // What --model-fingerprint auto costs the coordinator at startup.
  std::printf("fingerprint of the default model: %s in %.1f ms\n", expected->c_str(),
              absl::ToDoubleMilliseconds(absl::Now() - t0));
  fingerprint_ = "auto";
  Start(1);
  WorkerScript other;
  other.fingerprint = "size:1-fnv1a64:0000000000000000";
  ScriptedWorker* rogue = AddRank(other);
  ASSERT_TRUE(rogue->WaitGone());
  EXPECT_EQ(rogue->final_status().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const std::string msg = rogue->final_status().error_message();
  EXPECT_NE(msg.find("size:1-fnv1a64:0000000000000000"), std::string::npos) << msg;
  EXPECT_NE(msg.find(*expected), std::string::npos) << msg;
  WorkerScript right;
  right.fingerprint = *expected;
  EXPECT_TRUE(AddWorker(right)->registered());
}

// A worker answering with a token outside the vocabulary is dropped at that
// step; the request (nothing streamed yet) is retried on the good replica and
// the client gets the good replica's tokens only.
TEST_F(ClusterTest, AWorkerReturningOutOfVocabularyTokensIsDroppedAndTheRequestRetried) {
  Start(2);
  WorkerScript bad;
  bad.replica = 0;
  bad.bad_token_at_step = 1;
  bad.step_delay = absl::Seconds(1);  // time to bring the good replica up meanwhile
  ScriptedWorker* rogue = AddWorker(bad);
  ASSERT_TRUE(rogue->registered());
  auto s = cluster_->Submit("smol", Req(Prompt(6, 3), 5));  // only replica 0 is ready: it goes there
  ASSERT_TRUE(s.ok()) << s.status();
  ScriptedWorker* good = AddWorker({1, 257});
  ASSERT_TRUE(good->registered());
  // Cut off (the worker sees its stream cancelled; the coordinator's log
  // names the violation).
  ASSERT_TRUE(rogue->WaitGone());
  EXPECT_FALSE(rogue->final_status().ok());
  Outcome o = ReadAll(**s);
  ASSERT_TRUE(o.status.ok()) << o.status;
  EXPECT_EQ(o.tokens, Expected(Prompt(6, 3), 5));
}

// Mid-stream (tokens already streamed) the request cannot move: it fails with
// UNAVAILABLE naming the violation, and never carries the bad token.
TEST_F(ClusterTest, AViolationMidStreamFailsTheRequestWithoutTheBadToken) {
  Start(1);
  WorkerScript bad;
  bad.bad_token_at_step = 4;
  bad.bad_token_id = -1;
  AddWorker(bad);
  auto s = cluster_->Submit("smol", Req(Prompt(6, 4), 10));
  ASSERT_TRUE(s.ok()) << s.status();
  Outcome o = ReadAll(**s);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
  EXPECT_NE(o.status.message().find("violated the protocol"), absl::string_view::npos) << o.status;
  for (int32_t t : o.tokens) EXPECT_GE(t, 0);
  EXPECT_FALSE(o.tokens.empty());
}

TEST_F(ClusterTest, ATokenForASequenceTheStepDidNotScheduleDropsTheWorker) {
  Start(1);
  WorkerScript bad;
  bad.unscheduled_token_at_step = 1;
  ScriptedWorker* rogue = AddWorker(bad);
  auto s = cluster_->Submit("smol", Req(Prompt(6, 5), 3));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(rogue->WaitGone());
  Outcome o = ReadAll(**s);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;  // no other replica to retry on
  EXPECT_TRUE(o.tokens.empty());
  for (int i = 0; i < 100 && ReplicaReady(0); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(ReplicaReady(0));
}

}  // namespace
}  // namespace strata::coordinator
