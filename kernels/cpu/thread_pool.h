// A fixed pool of worker threads for data-parallel kernels.
//
// Threading contract: ParallelFor is called from one thread at a time (the
// engine's step thread); it splits [0, n) into contiguous chunks, runs them on
// the pool and on the calling thread, and returns when all chunks are done.
//
// A decode step makes a few hundred ParallelFor calls of tens of microseconds
// each, so waking sleeping threads through a condition variable every time
// would cost more than the work. Workers therefore spin on an atomic
// generation counter for a short while after each job (kSpinIterations) and
// only then sleep on the condition variable; the caller spins on the pending
// count. An idle pool costs nothing once the spin window has passed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace strata {

class ThreadPool {
 public:
  // threads >= 1 counts the calling thread; threads == 1 runs inline.
  static absl::StatusOr<std::unique_ptr<ThreadPool>> Create(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // fn(begin, end, thread_index) over disjoint ranges covering [0, n); each
  // range is a multiple of `grain` long except the last. thread_index is in
  // [0, num_threads()) and distinct among concurrently running calls, so it can
  // index per-thread scratch.
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  explicit ThreadPool(int threads);
  void WorkerLoop(int index);

  const int num_threads_;
  std::vector<std::thread> workers_;
  // The current job. Written by the caller before generation_ is bumped
  // (release) and read by workers after they observe the bump (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // Sleeping workers wait here; the mutex only orders sleep against wake-up.
  std::mutex mu_;
  std::condition_variable work_cv_;
};

// Splits [0, n) in `parts` chunks aligned to `grain`; returns chunk `i`.
void ChunkRange(int64_t n, int64_t grain, int parts, int i, int64_t* begin, int64_t* end);

}  // namespace strata
