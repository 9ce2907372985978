// Communicator::BindStream's default (host-buffer communicators): a null
// stream is accepted, a device stream is a FAILED_PRECONDITION that names the
// communicator, on a bare implementation and on the real CPU transports.
#include "parallel/communicator.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/cpu_communicator.h"
#include "parallel/in_memory_store.h"

namespace strata::parallel {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The smallest Communicator: every op succeeds, BindStream is not overridden.
class BareCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const std::string& Describe() const override { return description_; }
  absl::Status AllReduceSum(void*, int64_t, DataType) override { return absl::OkStatus(); }
  absl::Status AllGather(const void*, void*, int64_t, DataType) override { return absl::OkStatus(); }
  absl::Status Broadcast(void*, int64_t, DataType, int) override { return absl::OkStatus(); }
  absl::Status Send(const void*, int64_t, DataType, int) override { return absl::OkStatus(); }
  absl::Status Recv(void*, int64_t, DataType, int) override { return absl::OkStatus(); }
  absl::Status Barrier() override { return absl::OkStatus(); }

 private:
  std::string description_ = "bare rank 0 of 1 on test-host (unit test)";
};

TEST(CommunicatorBindStreamTest, DefaultAcceptsNullAndRefusesADeviceStream) {
  BareCommunicator comm;
  EXPECT_TRUE(comm.BindStream(nullptr).ok());
  int fake_stream = 0;  // any non-null handle: the default never dereferences it
  absl::Status bound = comm.BindStream(&fake_stream);
  EXPECT_EQ(bound.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(bound.message()), StartsWith(comm.Describe() + ": BindStream: "));
  EXPECT_THAT(std::string(bound.message()), HasSubstr("host buffers"));
  EXPECT_THAT(std::string(bound.message()), HasSubstr("NCCL"));
  // A refused binding leaves the communicator usable, and unbinding is fine.
  EXPECT_TRUE(comm.AllReduceSum(nullptr, 0, DataType::kF32).ok());
  EXPECT_TRUE(comm.BindStream(nullptr).ok());
}

// Gloo (size 1) and shared memory (2 ranks as threads) keep the default.
TEST(CommunicatorBindStreamTest, CpuTransportsKeepTheDefault) {
  for (CpuTransport transport : {CpuTransport::kTcp, CpuTransport::kSharedMemory}) {
    InMemoryStore store;
    const int n = transport == CpuTransport::kTcp ? 1 : 2;
    std::vector<absl::StatusOr<std::unique_ptr<Communicator>>> made(n);
    std::vector<std::thread> threads;
    for (int r = 0; r < n; ++r) {
      threads.emplace_back([&, r] {
        CpuCommunicatorConfig c;
        c.store = &store;
        c.prefix = transport == CpuTransport::kTcp ? "bind/tcp" : "bind/shm";
        c.rank = r;
        c.size = n;
        c.bind_address = "127.0.0.1";
        c.timeout = absl::Seconds(20);
        c.label = "bind-stream test";
        c.transport = transport;
        made[r] = CreateCpuCommunicator(c);
      });
    }
    for (std::thread& t : threads) t.join();
    for (auto& comm : made) {
      ASSERT_TRUE(comm.ok()) << comm.status();
      EXPECT_TRUE((*comm)->BindStream(nullptr).ok()) << (*comm)->Describe();
      int fake_stream = 0;
      absl::Status bound = (*comm)->BindStream(&fake_stream);
      EXPECT_EQ(bound.code(), absl::StatusCode::kFailedPrecondition) << (*comm)->Describe();
      EXPECT_THAT(std::string(bound.message()), StartsWith((*comm)->Describe()));
    }
  }
}

}  // namespace
}  // namespace strata::parallel
