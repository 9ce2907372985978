// Graceful shutdown (coordinator/drain.h) on a real cluster with scripted
// workers (scripted_worker.h): new requests are refused while admitted ones
// (running or still waiting) finish within the grace period; what is left at
// its end, or when it is cut short, ends with UNAVAILABLE saying why, and every
// KV block is free again.
#include "coordinator/drain.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "tests/coordinator/scripted_worker.h"

namespace strata::coordinator {
namespace {

using namespace ::strata::coordinator::test;  // NOLINT: test helpers

class DrainTest : public ClusterTest {
 protected:
  // Submits and waits until the request streamed its first chunk.
  std::shared_ptr<RequestStream> Streaming(std::vector<int32_t> prompt, int max_tokens, Outcome* first) {
    auto s = cluster_->Submit("smol", Req(std::move(prompt), max_tokens));
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return nullptr;
    auto chunk = (*s)->Next(absl::Seconds(10));
    EXPECT_TRUE(chunk.ok() && chunk->has_value());
    if (chunk.ok() && chunk->has_value()) {
      first->tokens.insert(first->tokens.end(), (**chunk).token_ids.begin(), (**chunk).token_ids.end());
    }
    return *s;
  }
  std::vector<std::string> lines_;
  DrainOptions Options(absl::Duration grace) {
    DrainOptions o;
    o.grace = grace;
    o.progress_interval = absl::Milliseconds(100);
    o.log = [this](const std::string& line) {
      absl::MutexLock l(&log_mu_);
      lines_.push_back(line);
    };
    return o;
  }
  bool Logged(absl::string_view text) {
    absl::MutexLock l(&log_mu_);
    for (const std::string& line : lines_) {
      if (absl::string_view(line).find(text) != absl::string_view::npos) return true;
    }
    return false;
  }
  absl::Mutex log_mu_;
  std::atomic<int> went_unready_{0};
};

TEST_F(DrainTest, InFlightAndWaitingRequestsFinishWhileNewOnesAreRefused) {
  Start(1, /*max_num_seqs=*/2);
  AddWorker({0, 257, absl::Milliseconds(3)});
  // A member, not a local: the callback also runs during TearDown.
  cluster_->set_on_readiness_change([this](bool ready) { went_unready_ += ready ? 0 : 1; });
  // Two run, the third waits for a slot (max_num_seqs = 2): all three are
  // admitted, so all three finish.
  std::vector<Outcome> outs(3);
  std::vector<std::shared_ptr<RequestStream>> streams;
  streams.push_back(Streaming(Prompt(20, 1), 60, &outs[0]));
  streams.push_back(Streaming(Prompt(20, 2), 60, &outs[1]));
  streams.push_back(*cluster_->Submit("smol", Req(Prompt(20, 3), 10)));

  Drain drain(cluster_.get(), Options(absl::Seconds(30)));
  DrainReport report;
  std::thread run([&] { report = drain.Run(); });
  for (int i = 0; i < 500 && cluster_->admitting(); ++i) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_FALSE(cluster_->admitting());
  EXPECT_FALSE(cluster_->IsReady());
  EXPECT_FALSE(cluster_->IsModelReady("smol"));
  auto refused = cluster_->Submit("smol", Req(Prompt(5, 4), 2));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("shutting down"), absl::string_view::npos) << refused.status();
  EXPECT_NE(metrics_->Render().find("\nstrata_draining 1"), std::string::npos);

  for (int i = 0; i < 3; ++i) {
    Outcome rest = ReadAll(*streams[i]);
    ASSERT_TRUE(rest.status.ok()) << i << ": " << rest.status;
    outs[i].tokens.insert(outs[i].tokens.end(), rest.tokens.begin(), rest.tokens.end());
  }
  run.join();
  EXPECT_EQ(outs[0].tokens, Expected(Prompt(20, 1), 60));
  EXPECT_EQ(outs[1].tokens, Expected(Prompt(20, 2), 60));
  EXPECT_EQ(outs[2].tokens, Expected(Prompt(20, 3), 10));
  EXPECT_EQ(report.in_flight_at_start, 3);
  EXPECT_EQ(report.cancelled, 0);
  EXPECT_FALSE(report.cut_short);
  EXPECT_EQ(report.kv_blocks_used, 0);
  EXPECT_LT(report.elapsed, absl::Seconds(10));
  EXPECT_GE(went_unready_.load(), 1);
  EXPECT_TRUE(Logged("3 requests in flight get up to 30 s"));
  EXPECT_TRUE(Logged("all 3 requests in flight ended"));
}

TEST_F(DrainTest, WhatIsLeftAfterTheGracePeriodIsCancelledAndItsBlocksFreed) {
  Start(2);
  AddWorker({0, 257, absl::Milliseconds(5)});
  AddWorker({1, 257, absl::Milliseconds(5)});
  // ~400 steps of 5 ms each: far longer than the grace period.
  std::vector<Outcome> outs(2);
  auto a = Streaming(Prompt(40, 1), 400, &outs[0]);
  auto b = Streaming(Prompt(40, 2), 400, &outs[1]);
  for (int i = 0; i < 200 && (Gauge("strata_kv_blocks_used", 0) <= 0 || Gauge("strata_kv_blocks_used", 1) <= 0);
       ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const absl::Time start = absl::Now();
  Drain drain(cluster_.get(), Options(absl::Milliseconds(400)));
  const DrainReport report = drain.Run();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // grace + one step + the settle wait
  for (auto* s : {a.get(), b.get()}) {
    Outcome o = ReadAll(*s);
    EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
    EXPECT_EQ(o.status.message(), "the server is shutting down; request cancelled after the 0.4 s grace period");
    EXPECT_LT(o.tokens.size(), 399u);  // cut off mid-generation
  }
  EXPECT_EQ(report.in_flight_at_start, 2);
  EXPECT_EQ(report.cancelled, 2);
  EXPECT_EQ(report.left_after_cancel, 0);
  EXPECT_EQ(report.kv_blocks_used, 0);
  EXPECT_EQ(cluster_->outstanding(), 0);
  EXPECT_EQ(Gauge("strata_kv_blocks_free", 0), 256);
  EXPECT_EQ(Gauge("strata_kv_blocks_free", 1), 256);
  EXPECT_TRUE(Logged("grace period over: cancelling 2 requests still running"));
  EXPECT_TRUE(Logged("of the grace period left"));  // progress while waiting
}

TEST_F(DrainTest, CutShortCancelsNowWithItsOwnMessage) {
  Start(1);
  AddWorker({0, 257, absl::Milliseconds(5)});
  Outcome first;
  auto s = Streaming(Prompt(30, 7), 400, &first);
  Drain drain(cluster_.get(), Options(absl::Seconds(60)));
  DrainReport report;
  const absl::Time start = absl::Now();
  std::thread run([&] { report = drain.Run(); });
  absl::SleepFor(absl::Milliseconds(200));
  drain.CutShort();
  run.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(report.cut_short);
  EXPECT_EQ(report.cancelled, 1);
  EXPECT_EQ(report.kv_blocks_used, 0);
  Outcome o = ReadAll(*s);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(o.status.message().find("second signal"), absl::string_view::npos) << o.status;
}

TEST_F(DrainTest, ZeroGraceCancelsAtOnce) {
  Start(1);
  AddWorker({0, 257, absl::Milliseconds(5)});
  Outcome first;
  auto s = Streaming(Prompt(30, 8), 400, &first);
  const absl::Time start = absl::Now();
  const DrainReport report = Drain(cluster_.get(), Options(absl::ZeroDuration())).Run();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(report.cancelled, 1);
  Outcome o = ReadAll(*s);
  EXPECT_EQ(o.status.message(), "the server is shutting down; request cancelled after the 0 s grace period");
}

TEST_F(DrainTest, AnIdleClusterDrainsImmediatelyAndStaysClosed) {
  Start(1);
  AddWorker({0, 257});
  const DrainReport report = Drain(cluster_.get(), Options(absl::Seconds(60))).Run();
  EXPECT_EQ(report.in_flight_at_start, 0);
  EXPECT_LT(report.elapsed, absl::Milliseconds(500));
  // Closed for good, although its replica is ready.
  EXPECT_FALSE(cluster_->IsReady());
  EXPECT_EQ(cluster_->Submit("smol", Req(Prompt(5, 1), 2)).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace strata::coordinator
