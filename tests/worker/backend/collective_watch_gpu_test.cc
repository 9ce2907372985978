// The collective watch on real NCCL (needs 2 GPUs; skips with a message
// otherwise): rank 0 all-reduces on a stream bound to its communicator while
// rank 1 never joins the collective, as a peer that died would. Waiting on the
// stream with WatchCommunicators must end after the timeout with
// DEADLINE_EXCEEDED, the communicator aborted (later ops refused) and the
// stream drained, where cudaStreamSynchronize would wait forever.
#include <cuda_runtime_api.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/in_memory_store.h"
#include "parallel/nccl_communicator.h"
#include "worker/backend/collective_watch.h"
#include "worker/communicator_watch.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

int GpuCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

TEST(CollectiveWatchGpuTest, APeerThatNeverJoinsFailsTheWaitInsteadOfHangingIt) {
  const int gpus = GpuCount();
  if (gpus == 0) GTEST_SKIP() << "no CUDA GPU present";
  if (gpus < 2) GTEST_SKIP() << "needs 2 GPUs, found " << gpus;
  parallel::InMemoryStore store;
  absl::Notification rank0_done;
  std::vector<std::string> failures(2);
  auto run_rank = [&](int rank) {
    auto fail = [&](const std::string& what) {
      if (failures[rank].empty()) failures[rank] = what;
    };
    parallel::NcclCommunicatorConfig config;
    config.store = &store;
    config.prefix = "watch/gen-0";
    config.rank = rank;
    config.size = 2;
    config.device = rank;
    config.timeout = absl::Seconds(60);
    config.sync_timeout = absl::Seconds(5);  // bounds rank 1's finalize once rank 0 aborted
    config.label = "collective watch test";
    auto created = parallel::CreateNcclCommunicator(config);
    if (!created.ok()) {
      rank0_done.Notify();  // the other rank must not wait for nothing
      return fail(created.status().ToString());
    }
    parallel::NcclCommunicator& comm = **created;
    if (rank == 1) {  // joins the group, never the collective
      rank0_done.WaitForNotificationWithTimeout(absl::Seconds(120));
      return;
    }
    cudaSetDevice(0);
    cudaStream_t compute = nullptr;
    if (cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking) != cudaSuccess) return fail("stream");
    float* data = nullptr;
    if (cudaMalloc(&data, 4096 * sizeof(float)) != cudaSuccess) return fail("cudaMalloc");
    if (absl::Status s = comm.BindStream(compute); !s.ok()) return fail(s.ToString());
    if (absl::Status s = comm.AllReduceSum(data, 4096, parallel::DataType::kF32); !s.ok()) {
      return fail(absl::StrCat("enqueue: ", s.ToString()));
    }
    const CollectiveWatch watch = WatchCommunicators({&comm}, absl::Seconds(2));
    BoundedStreamWaitParams p;
    p.watch = &watch;
    p.what = "cuda:0 stream";
    p.done = [compute]() -> absl::StatusOr<bool> {
      const cudaError_t e = cudaStreamQuery(compute);
      if (e == cudaErrorNotReady) return false;
      if (e != cudaSuccess) return absl::InternalError(cudaGetErrorString(e));
      return true;
    };
    const absl::Time start = absl::Now();
    const absl::Status waited = BoundedStreamWait(p);
    const absl::Duration took = absl::Now() - start;
    if (waited.code() != absl::StatusCode::kDeadlineExceeded) fail(absl::StrCat("wait: ", waited.ToString()));
    if (took < absl::Seconds(2) || took > absl::Seconds(20)) {
      fail(absl::StrCat("wait took ", absl::FormatDuration(took)));
    }
    if (cudaStreamQuery(compute) == cudaErrorNotReady) fail("the stream is still busy after the abort");
    const absl::Status later = comm.AllReduceSum(data, 4096, parallel::DataType::kF32);
    if (later.code() != absl::StatusCode::kFailedPrecondition) {
      fail(absl::StrCat("after abort: ", later.ToString()));
    }
    if (comm.AsyncError().ok()) fail("AsyncError is OK after the abort");
    rank0_done.Notify();
    cudaGetLastError();
    cudaFree(data);
    cudaStreamDestroy(compute);
  };
  std::thread r1(run_rank, 1);
  run_rank(0);
  rank0_done.Notify();
  r1.join();
  EXPECT_EQ(failures[0], "");
  EXPECT_EQ(failures[1], "");
}

}  // namespace
}  // namespace strata
