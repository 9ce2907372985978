#include "coordinator/request_stream.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

TEST(RequestStreamTest, DeliversChunksInOrderThenEnds) {
  RequestStream s;
  GenerationChunk a;
  a.text = "he";
  a.token_ids = {1};
  s.Push(a);
  EXPECT_TRUE(s.HasStreamed());
  GenerationChunk b;
  b.text = "llo";
  b.finish = FinishReason::kStop;
  s.Push(b);
  s.Push(a);  // after the last chunk: dropped
  auto r1 = s.Next(absl::Seconds(1));
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r1->has_value());
  EXPECT_EQ((*r1)->text, "he");
  auto r2 = s.Next(absl::Seconds(1));
  ASSERT_TRUE(r2.ok() && r2->has_value());
  EXPECT_EQ((*r2)->finish, FinishReason::kStop);
  EXPECT_EQ(s.Next(absl::Seconds(1)).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RequestStreamTest, TimesOutWithoutChunks) {
  RequestStream s;
  auto r = s.Next(absl::Milliseconds(5));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_FALSE(s.HasStreamed());
}

TEST(RequestStreamTest, ErrorEndsTheStreamAfterQueuedChunks) {
  RequestStream s;
  GenerationChunk a;
  a.token_ids = {7};
  s.Push(a);
  s.Fail(absl::UnavailableError("worker gone"));
  s.Fail(absl::InternalError("second"));  // ignored
  auto r1 = s.Next(absl::Seconds(1));
  ASSERT_TRUE(r1.ok() && r1->has_value());
  auto r2 = s.Next(absl::Seconds(1));
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r2.status().message(), "worker gone");
}

TEST(RequestStreamTest, CancelNotifiesOnceAndWakesNothingAfterEnd) {
  RequestStream s;
  std::atomic<int> calls{0};
  s.set_on_cancel([&] { calls++; });
  s.Cancel();
  s.Cancel();
  EXPECT_TRUE(s.IsCancelled());
  EXPECT_EQ(calls.load(), 1);
  RequestStream ended;
  ended.set_on_cancel([&] { calls++; });
  ended.Fail(absl::DeadlineExceededError("late"));
  ended.Cancel();
  EXPECT_EQ(calls.load(), 1);
}

TEST(RequestStreamTest, CancelKeepsItsFirstReason) {
  RequestStream plain;
  EXPECT_TRUE(plain.cancel_reason().ok());
  plain.Cancel();
  EXPECT_EQ(plain.cancel_reason().code(), absl::StatusCode::kCancelled);

  // A call whose deadline passed ends as DEADLINE_EXCEEDED (what the metrics
  // count), and a later cancel does not change that.
  RequestStream late;
  late.Cancel(absl::DeadlineExceededError("the call's deadline passed"));
  late.Cancel();
  EXPECT_TRUE(late.IsCancelled());
  EXPECT_EQ(late.cancel_reason().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(late.cancel_reason().message(), "the call's deadline passed");

  // An OK reason is no reason: it still reads as a cancel.
  RequestStream ok;
  ok.Cancel(absl::OkStatus());
  EXPECT_EQ(ok.cancel_reason().code(), absl::StatusCode::kCancelled);
}

TEST(RequestStreamTest, ConsumerWakesWhenProducerPushes) {
  RequestStream s;
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    GenerationChunk c;
    c.finish = FinishReason::kLength;
    s.Push(c);
  });
  auto r = s.Next(absl::Seconds(10));
  producer.join();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->finish, FinishReason::kLength);
}

}  // namespace
}  // namespace strata::coordinator
