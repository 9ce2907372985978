// A fixed pool of worker threads for data-parallel kernels.
//
// Threading contract: ParallelFor is called from one thread at a time (the
// engine's step thread); it splits [0, n) into contiguous chunks, runs them on
// the pool and on the calling thread, and returns when all chunks are done.
// Workers sleep on a condition variable between calls.
#pragma once

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
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The current job; valid while pending_ > 0.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
};

// Splits [0, n) in `parts` chunks aligned to `grain`; returns chunk `i`.
void ChunkRange(int64_t n, int64_t grain, int parts, int i, int64_t* begin, int64_t* end);

}  // namespace strata
