// BoundedStreamWait: the decisions of the wait that ends a device step with
// collectives in its stream, on fake stream/communicator callables.
#include "worker/backend/collective_watch.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

// A stream that finishes after `busy_polls` polls, or only once aborted (and
// then after `drain_polls` more), or never.
struct FakeStream {
  int busy_polls = 0;          // < 0: busy until aborted
  int drain_polls = 0;         // < 0: never drains after abort
  absl::Status error;          // returned by the poll when set
  int polls = 0;
  bool aborted = false;
  int polls_at_abort = 0;

  absl::StatusOr<bool> Poll() {
    ++polls;
    if (!error.ok()) return error;
    if (aborted) return drain_polls >= 0 && polls - polls_at_abort > drain_polls;
    return busy_polls >= 0 && polls > busy_polls;
  }
};

struct FakeComms {
  int healthy_checks = 1 << 30;  // checks answered OK before `error`
  absl::Status error = absl::UnavailableError("tp group: peer rank 1 gone");
  int checks = 0;
  std::vector<absl::Status> aborts;
};

BoundedStreamWaitParams Params(FakeStream* stream, const CollectiveWatch* watch) {
  BoundedStreamWaitParams p;
  p.done = [stream] { return stream->Poll(); };
  p.watch = watch;
  p.what = "cuda:0 stream";
  p.poll = absl::Microseconds(100);
  p.check_every = absl::ZeroDuration();  // every look: the counts below are exact
  return p;
}

CollectiveWatch Watch(FakeComms* comms, FakeStream* stream, absl::Duration timeout) {
  CollectiveWatch w;
  w.timeout = timeout;
  w.drain_after_abort = absl::Seconds(5);
  w.check = [comms] { return ++comms->checks > comms->healthy_checks ? comms->error : absl::OkStatus(); };
  w.abort_communicators = [comms, stream](const absl::Status& why) {
    comms->aborts.push_back(why);
    stream->aborted = true;
    stream->polls_at_abort = stream->polls;
  };
  return w;
}

TEST(BoundedStreamWait, AFinishedStreamIsOkWithoutAskingTheCommunicators) {
  FakeStream stream;
  FakeComms comms;
  const CollectiveWatch w = Watch(&comms, &stream, absl::Seconds(10));
  EXPECT_TRUE(BoundedStreamWait(Params(&stream, &w)).ok());
  EXPECT_EQ(stream.polls, 1);
  EXPECT_EQ(comms.checks, 0);
}

TEST(BoundedStreamWait, WaitsUntilTheStreamFinishesWhileTheCommunicatorsAreHealthy) {
  FakeStream stream;
  stream.busy_polls = 500;
  FakeComms comms;
  const CollectiveWatch w = Watch(&comms, &stream, absl::Seconds(30));
  EXPECT_TRUE(BoundedStreamWait(Params(&stream, &w)).ok());
  EXPECT_EQ(stream.polls, 501);
  EXPECT_EQ(comms.checks, 500);
  EXPECT_TRUE(comms.aborts.empty());
}

TEST(BoundedStreamWait, AsksTheCommunicatorsAtMostEveryCheckEvery) {
  // Busy for 50 ms of looks: with a check every 10 ms at most 6 checks, however
  // many looks the spinning makes.
  FakeStream stream;
  stream.busy_polls = -1;
  FakeComms comms;
  const CollectiveWatch w = Watch(&comms, &stream, absl::Seconds(30));
  BoundedStreamWaitParams p = Params(&stream, &w);
  const absl::Time until = absl::Now() + absl::Milliseconds(50);
  p.done = [&stream, until]() -> absl::StatusOr<bool> {
    ++stream.polls;
    return absl::Now() >= until;
  };
  p.check_every = absl::Milliseconds(10);
  EXPECT_TRUE(BoundedStreamWait(p).ok());
  EXPECT_GE(comms.checks, 1);
  EXPECT_LE(comms.checks, 6);
  EXPECT_GT(stream.polls, comms.checks);
}

TEST(BoundedStreamWait, WithoutAWatchItWaitsUnboundedAndChecksNothing) {
  FakeStream stream;
  stream.busy_polls = 200;
  EXPECT_TRUE(BoundedStreamWait(Params(&stream, nullptr)).ok());
  EXPECT_EQ(stream.polls, 201);
  // A watch missing its abort is inactive too.
  FakeStream stream2;
  stream2.busy_polls = 50;
  FakeComms comms;
  CollectiveWatch half = Watch(&comms, &stream2, absl::ZeroDuration());
  half.abort_communicators = nullptr;
  EXPECT_TRUE(BoundedStreamWait(Params(&stream2, &half)).ok());
  EXPECT_EQ(comms.checks, 0);
}

TEST(BoundedStreamWait, AStreamErrorIsReturnedAsIsAndAbortsNothing) {
  FakeStream stream;
  stream.error = absl::InternalError("cudaStreamQuery: cudaErrorIllegalAddress");
  FakeComms comms;
  const CollectiveWatch w = Watch(&comms, &stream, absl::Seconds(10));
  const absl::Status s = BoundedStreamWait(Params(&stream, &w));
  EXPECT_EQ(s, stream.error);
  EXPECT_TRUE(comms.aborts.empty());
}

TEST(BoundedStreamWait, AnAsynchronousErrorAbortsTheCommunicatorsAndFailsOnceTheStreamDrained) {
  FakeStream stream;
  stream.busy_polls = -1;  // a collective waiting on a dead peer
  stream.drain_polls = 3;
  FakeComms comms;
  comms.healthy_checks = 5;
  const CollectiveWatch w = Watch(&comms, &stream, absl::Seconds(30));
  const absl::Status s = BoundedStreamWait(Params(&stream, &w));
  EXPECT_EQ(s, comms.error);
  ASSERT_EQ(comms.aborts.size(), 1u);
  EXPECT_EQ(comms.aborts[0], comms.error);
  EXPECT_EQ(stream.polls - stream.polls_at_abort, 4);  // waited for the drain
}

TEST(BoundedStreamWait, AfterTheTimeoutItAbortsWithDeadlineExceededNamingTheFlag) {
  FakeStream stream;
  stream.busy_polls = -1;
  FakeComms comms;  // never reports anything: a peer that just never joins
  const CollectiveWatch w = Watch(&comms, &stream, absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  const absl::Status s = BoundedStreamWait(Params(&stream, &w));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("cuda:0 stream: work unfinished after 100ms"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("--collective-timeout-s"));
  ASSERT_EQ(comms.aborts.size(), 1u);
  EXPECT_EQ(comms.aborts[0], s);
  EXPECT_GE(took, absl::Milliseconds(100));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST(BoundedStreamWait, AStreamThatNeverDrainsAfterTheAbortIsInternalAndStillBounded) {
  FakeStream stream;
  stream.busy_polls = -1;
  stream.drain_polls = -1;
  FakeComms comms;
  comms.healthy_checks = 0;
  CollectiveWatch w = Watch(&comms, &stream, absl::Seconds(30));
  w.drain_after_abort = absl::Milliseconds(50);
  const absl::Time start = absl::Now();
  const absl::Status s = BoundedStreamWait(Params(&stream, &w));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("still busy 50ms after aborting its communicators"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("peer rank 1 gone"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("the device is unusable"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(comms.aborts.size(), 1u);
}

}  // namespace
}  // namespace strata
