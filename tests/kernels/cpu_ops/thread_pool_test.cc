// ThreadPool: every index is covered exactly once, chunks respect the grain,
// thread indices are distinct, and back-to-back calls (spinning workers) and
// calls after the workers went to sleep both complete.
#include "kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

namespace strata {
namespace {

void CheckCoverage(ThreadPool* pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(n);
  std::mutex mu;
  std::set<int> threads_seen;
  pool->ParallelFor(n, grain, [&](int64_t b, int64_t e, int t) {
    EXPECT_LT(b, e);
    EXPECT_TRUE(b % grain == 0) << "chunk start " << b << " not aligned to " << grain;
    EXPECT_GE(t, 0);
    EXPECT_LT(t, pool->num_threads());
    {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_TRUE(threads_seen.insert(t).second) << "thread index " << t << " used twice";
    }
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    auto pool = ThreadPool::Create(threads).value();
    for (int64_t n : {1, 2, 7, 16, 100, 1001}) {
      for (int64_t grain : {1, 4, 16}) CheckCoverage(pool.get(), n, grain);
    }
  }
}

TEST(ThreadPool, ManyBackToBackCallsAndCallsAfterSleep) {
  auto pool = ThreadPool::Create(3).value();
  std::atomic<int64_t> sum{0};
  for (int i = 0; i < 2000; ++i) {
    pool->ParallelFor(30, 1, [&](int64_t b, int64_t e, int) { sum += e - b; });
  }
  EXPECT_EQ(sum.load(), 2000 * 30);
  // Let the workers pass their spin window and sleep, then call again.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CheckCoverage(pool.get(), 64, 8);
}

TEST(ThreadPool, RejectsBadThreadCounts) {
  EXPECT_FALSE(ThreadPool::Create(0).ok());
  EXPECT_FALSE(ThreadPool::Create(-3).ok());
}

TEST(ThreadPool, DestroysIdleAndSleepingPools) {
  { auto pool = ThreadPool::Create(4).value(); }  // never used: workers spinning
  auto pool = ThreadPool::Create(4).value();
  CheckCoverage(pool.get(), 10, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pool.reset();  // workers asleep on the condition variable
  SUCCEED();
}

}  // namespace
}  // namespace strata
