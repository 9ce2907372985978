#include "common/termination_signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

// Each TEST runs in its own process (gtest_discover_tests), so the watcher is
// the only thread that may take the signal: an unblocked thread would die of it.
TEST(TerminationSignals, WaitForFirstReturnsTheFirstSignalsName) {
  TerminationSignals signals;
  EXPECT_EQ(signals.count(), 0);
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  EXPECT_EQ(signals.WaitForFirst(), "SIGTERM");
  EXPECT_EQ(signals.count(), 1);
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (signals.count() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(signals.count(), 2);
  EXPECT_EQ(signals.WaitForFirst(), "SIGTERM");  // still the first one
}

TEST(TerminationSignals, AHandlerSetLateSeesTheSignalThatCameBeforeItThenEachLaterOne) {
  TerminationSignals signals;
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  signals.WaitForFirst();
  absl::Mutex mu;
  std::vector<std::string> calls;
  signals.SetHandler([&](const std::string& name, int count) {
    absl::MutexLock lock(&mu);
    calls.push_back(absl::StrCat(name, "#", count));
  });
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(calls.size(), 1u);  // replayed at once
    EXPECT_EQ(calls[0], "SIGINT#1");
  }
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                      +[](std::vector<std::string>* c) { return c->size() == 2; }, &calls),
                                  absl::Seconds(10)));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1], "SIGTERM#2");
}

TEST(TerminationSignals, DetachingWaitsForARunningHandler) {
  TerminationSignals signals;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  signals.SetHandler([&](const std::string&, int) {
    started = true;
    absl::SleepFor(absl::Milliseconds(300));
    finished = true;
  });
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!started && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(started);
  signals.SetHandler(nullptr);
  // What the handler touched may be destroyed now: it has returned.
  EXPECT_TRUE(finished);
}

TEST(TerminationSignals, NoHandlerCallsAfterDetaching) {
  TerminationSignals signals;
  std::atomic<int> calls{0};
  signals.SetHandler([&](const std::string&, int) { ++calls; });
  signals.SetHandler(nullptr);
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  signals.WaitForFirst();
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace strata
