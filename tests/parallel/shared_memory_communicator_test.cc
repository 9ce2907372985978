// SharedMemoryCommunicator and CreateCpuCommunicator: results checked against
// sums and copies computed here (exact in f32: small integers), ranks as
// threads of this process or as forked processes.
#include "parallel/shared_memory_communicator.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parallel/cpu_communicator.h"
#include "parallel/file_store.h"
#include "parallel/gloo_communicator.h"
#include "parallel/in_memory_store.h"

namespace strata::parallel {
namespace {

std::string Prefix(const std::string& name) {
  static std::atomic<int> next{0};
  return absl::StrCat("shm-test/", name, "/", next.fetch_add(1));
}

std::vector<std::unique_ptr<Communicator>> MakeGroup(KeyValueStore* store, int n,
                                                     SharedMemoryCommunicatorConfig base = {}) {
  const std::string prefix = Prefix("group");
  std::vector<absl::StatusOr<std::unique_ptr<Communicator>>> made(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      SharedMemoryCommunicatorConfig c = base;
      c.store = store;
      c.prefix = prefix;
      c.rank = r;
      c.size = n;
      c.label = prefix;
      if (c.timeout == absl::Seconds(60)) c.timeout = absl::Seconds(20);
      made[r] = CreateSharedMemoryCommunicator(c);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<std::unique_ptr<Communicator>> out;
  for (auto& m : made) {
    EXPECT_TRUE(m.ok()) << m.status();
    if (m.ok()) out.push_back(std::move(*m));
  }
  return out;
}

void OnRanks(const std::vector<std::unique_ptr<Communicator>>& comms,
             const std::function<void(int, Communicator&)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < static_cast<int>(comms.size()); ++r) threads.emplace_back([&, r] { fn(r, *comms[r]); });
  for (auto& t : threads) t.join();
}

float Value(int rank, int64_t i) { return static_cast<float>((rank + 1) * 1000 + (i % 101) - 50); }

// Small slots so that messages of a few KiB already run in several chunks.
SharedMemoryCommunicatorConfig SmallSlots() {
  SharedMemoryCommunicatorConfig c;
  c.collective_slot_bytes = 1024;
  c.p2p_slot_bytes = 512;
  return c;
}

class ShmGroupTest : public ::testing::TestWithParam<int> {};

TEST_P(ShmGroupTest, CollectivesMatchReferenceAcrossChunkSizes) {
  const int n = GetParam();
  InMemoryStore store;
  auto comms = MakeGroup(&store, n, SmallSlots());
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  EXPECT_TRUE(absl::StartsWith(comms[0]->Describe(), "shm rank 0 of ")) << comms[0]->Describe();
  // Same random op sequence on every rank (seeded identically): all-reduce,
  // all-gather, broadcast from a random root, barrier; sizes around the slot.
  std::vector<std::vector<float>> first_result(n);
  std::atomic<int> failures{0};
  OnRanks(comms, [&](int r, Communicator& c) {
    std::mt19937 rng(7);
    for (int iter = 0; iter < 300; ++iter) {
      const int op = rng() % 4;
      const int64_t count = 1 + rng() % 700;  // up to 2800 bytes: 1-3 chunks of 1 KiB
      const int root = rng() % n;
      std::vector<float> buf(count), gathered(count * n, -1.0f);
      for (int64_t i = 0; i < count; ++i) buf[i] = Value(r, i + iter);
      if (op == 0) {
        ASSERT_TRUE(c.AllReduceSum(buf.data(), count, DataType::kF32).ok());
        for (int64_t i = 0; i < count; ++i) {
          float want = 0;
          for (int q = 0; q < n; ++q) want += Value(q, i + iter);
          if (buf[i] != want) ++failures;
        }
        if (iter == 0 || first_result[r].empty()) first_result[r] = buf;
      } else if (op == 1) {
        ASSERT_TRUE(c.AllGather(buf.data(), gathered.data(), count, DataType::kF32).ok());
        for (int q = 0; q < n; ++q) {
          for (int64_t i = 0; i < count; ++i) failures += gathered[q * count + i] != Value(q, i + iter);
        }
      } else if (op == 2) {
        ASSERT_TRUE(c.Broadcast(buf.data(), count, DataType::kF32, root).ok());
        for (int64_t i = 0; i < count; ++i) failures += buf[i] != Value(root, i + iter);
      } else {
        ASSERT_TRUE(c.Barrier().ok());
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);
  for (int r = 1; r < n; ++r) EXPECT_EQ(first_result[r], first_result[0]) << "rank " << r;
}

TEST_P(ShmGroupTest, AllReduceIsBitwiseIdenticalOnEveryRank) {
  const int n = GetParam();
  InMemoryStore store;
  auto comms = MakeGroup(&store, n);
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  const int64_t count = 4099;
  std::vector<std::vector<float>> out(n);
  OnRanks(comms, [&](int r, Communicator& c) {
    std::mt19937 rng(100 + r);
    std::normal_distribution<float> d;
    out[r].resize(count);
    for (auto& v : out[r]) v = d(rng);  // non-integers: rounding depends on order
    ASSERT_TRUE(c.AllReduceSum(out[r].data(), count, DataType::kF32).ok());
  });
  for (int r = 1; r < n; ++r) EXPECT_EQ(out[r], out[0]) << "rank " << r;
  // Against a reference summed here in rank order.
  std::vector<float> want(count, 0.0f);
  for (int q = 0; q < n; ++q) {
    std::mt19937 rng(100 + q);
    std::normal_distribution<float> d;
    for (auto& v : want) v += d(rng);
  }
  EXPECT_EQ(out[0], want);
}

TEST_P(ShmGroupTest, SendRecvRingInOrderWithChunks) {
  const int n = GetParam();
  InMemoryStore store;
  auto comms = MakeGroup(&store, n, SmallSlots());
  ASSERT_EQ(comms.size(), static_cast<size_t>(n));
  std::atomic<int> failures{0};
  OnRanks(comms, [&](int r, Communicator& c) {
    const int next = (r + 1) % n, prev = (r + n - 1) % n;
    for (int iter = 0; iter < 60; ++iter) {
      const int64_t count = iter % 5 == 0 ? 0 : 1 + (iter * 37) % 600;  // 0 to 2400 bytes, up to 5 chunks
      std::vector<int32_t> out(count), in(count, -1);
      for (int64_t i = 0; i < count; ++i) out[i] = r * 100000 + iter * 1000 + static_cast<int32_t>(i);
      // A Send may wait for its receiver (one slot per pair), so even ranks
      // send first and odd ranks receive first: no cycle of waiting senders.
      auto send = [&] { ASSERT_TRUE(c.Send(out.data(), count, DataType::kI32, next).ok()); };
      auto recv = [&] {
        ASSERT_TRUE(c.Recv(in.data(), count, DataType::kI32, prev).ok());
        for (int64_t i = 0; i < count; ++i) failures += in[i] != prev * 100000 + iter * 1000 + i;
      };
      if (r % 2 == 0) {
        send();
        recv();
      } else {
        recv();
        send();
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(ShmCommunicatorTest, SendReturnsBeforeTheReceiverAsksForASmallMessage) {
  InMemoryStore store;
  auto comms = MakeGroup(&store, 2);
  ASSERT_EQ(comms.size(), 2u);
  std::vector<float> msg{1, 2, 3}, got(3);
  // Rank 0 sends, then both meet in a barrier; only then rank 1 receives.
  OnRanks(comms, [&](int r, Communicator& c) {
    if (r == 0) {
      ASSERT_TRUE(c.Send(msg.data(), 3, DataType::kF32, 1).ok());
    }
    ASSERT_TRUE(c.Barrier().ok());
    if (r == 1) {
      ASSERT_TRUE(c.Recv(got.data(), 3, DataType::kF32, 0).ok());
    }
  });
  EXPECT_EQ(got, msg);
}

INSTANTIATE_TEST_SUITE_P(Ranks, ShmGroupTest, ::testing::Values(2, 3, 4));

TEST(ShmCommunicatorTest, BadArgumentsAreInvalidArgumentNamingTheProblem) {
  InMemoryStore store;
  auto comms = MakeGroup(&store, 2);
  ASSERT_EQ(comms.size(), 2u);
  std::vector<float> buf(4);
  auto s = comms[0]->AllReduceSum(buf.data(), 4, DataType::kF16);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "f16")) << s;
  s = comms[0]->Send(buf.data(), 4, DataType::kF32, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "peer 0")) << s;
  s = comms[0]->Broadcast(buf.data(), 4, DataType::kF32, 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = comms[0]->AllReduceSum(nullptr, 4, DataType::kF32);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  // Still usable after argument errors.
  OnRanks(comms, [&](int, Communicator& c) { EXPECT_TRUE(c.Barrier().ok()); });

  SharedMemoryCommunicatorConfig bad;
  bad.rank = 2;
  bad.size = 2;
  EXPECT_EQ(CreateSharedMemoryCommunicator(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShmCommunicatorTest, SizeOneIsLocal) {
  SharedMemoryCommunicatorConfig c;
  auto comm = CreateSharedMemoryCommunicator(c);
  ASSERT_TRUE(comm.ok()) << comm.status();
  std::vector<float> in{1, 2, 3}, out(3);
  EXPECT_TRUE((*comm)->AllReduceSum(in.data(), 3, DataType::kF32).ok());
  EXPECT_EQ(in, (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE((*comm)->AllGather(in.data(), out.data(), 3, DataType::kF32).ok());
  EXPECT_EQ(out, in);
}

TEST(ShmCommunicatorTest, SegmentIsUnlinkedOnceEveryRankHasMappedIt) {
  InMemoryStore store;
  auto comms = MakeGroup(&store, 3);
  ASSERT_EQ(comms.size(), 3u);
  const std::string mine = absl::StrCat("strata-", getpid(), "-");
  DIR* d = opendir("/dev/shm");
  ASSERT_NE(d, nullptr);
  int left = 0;
  while (dirent* e = readdir(d)) left += absl::StartsWith(e->d_name, mine);
  closedir(d);
  EXPECT_EQ(left, 0) << "segments of this process still in /dev/shm";
  OnRanks(comms, [&](int, Communicator& c) { EXPECT_TRUE(c.Barrier().ok()); });
}

TEST(ShmCommunicatorTest, MissingPeerTimesOutThenCommunicatorIsUnusable) {
  InMemoryStore store;
  SharedMemoryCommunicatorConfig c;
  c.timeout = absl::Milliseconds(300);
  auto comms = MakeGroup(&store, 2, c);
  ASSERT_EQ(comms.size(), 2u);
  std::vector<float> buf(8, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  auto s = comms[0]->AllReduceSum(buf.data(), 8, DataType::kF32);  // rank 1 never joins
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), comms[0]->Describe())) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "rank 1")) << s;
  EXPECT_EQ(comms[0]->Barrier().code(), absl::StatusCode::kFailedPrecondition);
  // The peer sees the abort instead of waiting out its own timeout.
  auto peer = comms[1]->Barrier();
  EXPECT_EQ(peer.code(), absl::StatusCode::kUnavailable) << peer;
  EXPECT_TRUE(absl::StrContains(peer.message(), "rank 0 of the group failed")) << peer;
}

TEST(ShmCommunicatorTest, PeerProcessExitIsUnavailableWithoutWaitingForTheTimeout) {
  char dir[] = "/tmp/strata-shm-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Rank 1: joins, takes part in one barrier, exits.
    FileStore store(dir);
    SharedMemoryCommunicatorConfig c;
    c.store = &store;
    c.prefix = "exit";
    c.rank = 1;
    c.size = 2;
    auto comm = CreateSharedMemoryCommunicator(c);
    if (!comm.ok() || !(*comm)->Barrier().ok()) _exit(1);
    _exit(0);
  }
  FileStore store(dir);
  SharedMemoryCommunicatorConfig c;
  c.store = &store;
  c.prefix = "exit";
  c.rank = 0;
  c.size = 2;
  c.timeout = absl::Seconds(60);
  auto comm = CreateSharedMemoryCommunicator(c);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_TRUE((*comm)->Barrier().ok());
  std::vector<float> buf(16, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  auto s = (*comm)->AllReduceSum(buf.data(), 16, DataType::kF32);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "exited")) << s;
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

// CreateCpuCommunicator: shared memory when the identities match, Gloo when
// one rank reports another host, an error when shm was demanded.
TEST(CpuCommunicatorTest, AutoPicksSharedMemoryOnOneHostAndTcpOtherwise) {
  InMemoryStore store;
  {
    const std::string prefix = Prefix("auto-local");
    std::vector<absl::StatusOr<std::unique_ptr<Communicator>>> made(2);
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&, r] {
        CpuCommunicatorConfig c;
        c.store = &store;
        c.prefix = prefix;
        c.rank = r;
        c.size = 2;
        c.bind_address = "127.0.0.1";
        c.timeout = absl::Seconds(20);
        c.label = prefix;
        made[r] = CreateCpuCommunicator(c);
      });
    }
    for (auto& t : threads) t.join();
    for (auto& m : made) {
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_TRUE(absl::StartsWith((*m)->Describe(), "shm ")) << (*m)->Describe();
    }
  }
  {
    // Rank 1 is "elsewhere": its identity differs; it joins Gloo directly.
    const std::string prefix = Prefix("auto-remote");
    ASSERT_TRUE(store.Set(absl::StrCat(prefix, "/host/1"), "another-host").ok());
    absl::StatusOr<std::unique_ptr<Communicator>> rank0, rank1;
    std::thread t0([&] {
      CpuCommunicatorConfig c;
      c.store = &store;
      c.prefix = prefix;
      c.rank = 0;
      c.size = 2;
      c.bind_address = "127.0.0.1";
      c.timeout = absl::Seconds(20);
      c.label = prefix;
      rank0 = CreateCpuCommunicator(c);
    });
    std::thread t1([&] {
      GlooCommunicatorConfig c;
      c.store = &store;
      c.prefix = absl::StrCat(prefix, "/tcp");
      c.rank = 1;
      c.size = 2;
      c.bind_address = "127.0.0.1";
      c.timeout = absl::Seconds(20);
      rank1 = CreateGlooCommunicator(c);
    });
    t0.join();
    t1.join();
    ASSERT_TRUE(rank0.ok()) << rank0.status();
    ASSERT_TRUE(rank1.ok()) << rank1.status();
    EXPECT_TRUE(absl::StartsWith((*rank0)->Describe(), "gloo/tcp ")) << (*rank0)->Describe();
    std::vector<float> a{1, 2}, b{10, 20};
    std::thread u([&] { EXPECT_TRUE((*rank1)->AllReduceSum(b.data(), 2, DataType::kF32).ok()); });
    EXPECT_TRUE((*rank0)->AllReduceSum(a.data(), 2, DataType::kF32).ok());
    u.join();
    EXPECT_EQ(a, (std::vector<float>{11, 22}));
  }
  {
    const std::string prefix = Prefix("shm-demanded");
    ASSERT_TRUE(store.Set(absl::StrCat(prefix, "/host/1"), "another-host").ok());
    CpuCommunicatorConfig c;
    c.store = &store;
    c.prefix = prefix;
    c.rank = 0;
    c.size = 2;
    c.timeout = absl::Seconds(5);
    c.label = prefix;
    c.transport = CpuTransport::kSharedMemory;
    auto made = CreateCpuCommunicator(c);
    EXPECT_EQ(made.status().code(), absl::StatusCode::kFailedPrecondition) << made.status();
    EXPECT_TRUE(absl::StrContains(made.status().message(), "rank 1 is not on this host")) << made.status();
  }
  EXPECT_EQ(ParseCpuTransport("udp").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::parallel
