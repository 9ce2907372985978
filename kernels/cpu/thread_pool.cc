#include "kernels/cpu/thread_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STRATA_CPU_RELAX() _mm_pause()
#else
#define STRATA_CPU_RELAX() std::this_thread::yield()
#endif

namespace strata {

namespace {
// Tens of microseconds of pause instructions: longer than the gap between two
// kernel calls of a decode step, much shorter than the gap between steps of an
// idle engine. Kept short because on an oversubscribed machine a spinning
// thread takes the core from the thread it waits for; past the window the
// caller yields and workers sleep.
constexpr int kSpinIterations = 4000;
}  // namespace

void ChunkRange(int64_t n, int64_t grain, int parts, int i, int64_t* begin, int64_t* end) {
  const int64_t units = (n + grain - 1) / grain;
  const int64_t base = units / parts;
  const int64_t extra = units % parts;
  const int64_t ub = i * base + std::min<int64_t>(i, extra);
  const int64_t ue = ub + base + (i < extra ? 1 : 0);
  *begin = std::min(n, ub * grain);
  *end = std::min(n, ue * grain);
}

absl::StatusOr<std::unique_ptr<ThreadPool>> ThreadPool::Create(int threads) {
  if (threads < 1 || threads > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be in [1, 1024], got ", threads));
  }
  return std::unique_ptr<ThreadPool>(new ThreadPool(threads));
}

ThreadPool::ThreadPool(int threads) : num_threads_(threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for the next job, then sleep.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < kSpinIterations; ++i) {
      if (stop_.load(std::memory_order_relaxed)) return;
      STRATA_CPU_RELAX();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] {
        return stop_.load(std::memory_order_acquire) ||
               generation_.load(std::memory_order_acquire) != seen;
      });
      if (stop_.load(std::memory_order_acquire)) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    int64_t b, e;
    ChunkRange(job_n_, job_grain_, num_threads_, index, &b, &e);
    if (b < e) (*job_)(b, e, index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (num_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  pending_.store(num_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  {
    // Orders the bump against a worker that is about to sleep: it either saw
    // the new generation under the mutex or is already waiting.
    std::lock_guard<std::mutex> lock(mu_);
  }
  work_cv_.notify_all();
  int64_t b, e;
  ChunkRange(n, grain, num_threads_, 0, &b, &e);
  if (b < e) fn(b, e, 0);
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kSpinIterations) {
      STRATA_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

}  // namespace strata
