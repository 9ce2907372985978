// GlooCommunicator: 1-4 ranks as threads over InMemoryStore on 127.0.0.1.
// Every result is checked against a reference the test computes itself from
// the same deterministic inputs (no zeros: a missing contribution shows).
#include "parallel/gloo_communicator.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "parallel/in_memory_store.h"
#include "tests/parallel/gloo_test_group.h"

namespace strata::parallel {
namespace {

using testing::CreateGroup;
using testing::CreateGroupStatus;
using testing::RunOnRanks;
using testing::UniquePrefix;

constexpr absl::Duration kOpTimeout = absl::Seconds(20);

// Rank r's small-integer input for call `call`: values in [-9, 9] \ {0}, exact in f32.
std::vector<float> SmallIntInput(int rank, int call, int64_t count) {
  std::mt19937 rng(1000 * call + rank);
  std::uniform_int_distribution<int> d(1, 9);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>((rng() & 1) ? d(rng) : -d(rng));
  return v;
}

// Rank r's random input: |x| in [0.5, 1.5), random sign.
std::vector<float> RandomInput(int rank, int call, int64_t count) {
  std::mt19937 rng(7919 * call + 31 * rank + 5);
  std::uniform_real_distribution<float> d(0.5f, 1.5f);
  std::vector<float> v(count);
  for (auto& x : v) x = (rng() & 1) ? d(rng) : -d(rng);
  return v;
}

std::vector<uint8_t> ByteInput(int rank, int call, int64_t bytes) {
  std::mt19937 rng(104729 * call + rank + 1);
  std::vector<uint8_t> v(bytes);
  for (auto& x : v) x = static_cast<uint8_t>(1 + rng() % 255);
  return v;
}

class GlooRanksTest : public ::testing::TestWithParam<int> {
 protected:
  int n() const { return GetParam(); }
  InMemoryStore store_;
};

TEST_P(GlooRanksTest, DescribeNamesTransportRankHostAndLabel) {
  const std::string prefix = UniquePrefix("describe");
  auto comms = CreateGroup(&store_, prefix, n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  for (int r = 0; r < n(); ++r) {
    EXPECT_EQ(comms[r]->rank(), r);
    EXPECT_EQ(comms[r]->size(), n());
    EXPECT_EQ(comms[r]->Describe(),
              absl::StrCat("gloo/tcp rank ", r, " of ", n(), " on ", host, " (", prefix, ")"));
  }
}

// Changing sizes and fresh buffers (new pointers) every call, exact sums.
TEST_P(GlooRanksTest, AllReduceSumSmallIntegersExact) {
  for (auto algorithm : {GlooAllReduceAlgorithm::kAuto, GlooAllReduceAlgorithm::kRing,
                         GlooAllReduceAlgorithm::kHalvingDoubling}) {
    SCOPED_TRACE(GlooAllReduceAlgorithmName(algorithm));
    auto comms = CreateGroup(&store_, UniquePrefix("allreduce_int"), n(), kOpTimeout, algorithm);
    ASSERT_EQ(static_cast<int>(comms.size()), n());
    const std::vector<int64_t> counts = {1, 7, 1001, 300000, 7, 1, 1001, 65536, 7};
    RunOnRanks(comms, [&](int rank, Communicator& c) {
      for (int call = 0; call < static_cast<int>(counts.size()); ++call) {
        std::vector<float> buf = SmallIntInput(rank, call, counts[call]);
        ASSERT_TRUE(c.AllReduceSum(buf.data(), counts[call], DataType::kF32).ok());
        std::vector<float> want(counts[call], 0.0f);
        for (int r = 0; r < n(); ++r) {
          std::vector<float> in = SmallIntInput(r, call, counts[call]);
          for (int64_t i = 0; i < counts[call]; ++i) want[i] += in[i];
        }
        for (int64_t i = 0; i < counts[call]; ++i) {
          ASSERT_EQ(buf[i], want[i]) << "rank " << rank << " call " << call << " i " << i;
        }
      }
    });
  }
}

// Random floats: the sum of n values each in [0.5, 1.5) differs from the
// double reference by at most a few ulps of n * 1.5: tolerance 1e-5 absolute.
TEST_P(GlooRanksTest, AllReduceSumRandomFloatsWithinTolerance) {
  auto comms = CreateGroup(&store_, UniquePrefix("allreduce_float"), n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  const std::vector<int64_t> counts = {7, 300000, 1001, 1};
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    for (int call = 0; call < static_cast<int>(counts.size()); ++call) {
      std::vector<float> buf = RandomInput(rank, call, counts[call]);
      ASSERT_TRUE(c.AllReduceSum(buf.data(), counts[call], DataType::kF32).ok());
      std::vector<double> want(counts[call], 0.0);
      for (int r = 0; r < n(); ++r) {
        std::vector<float> in = RandomInput(r, call, counts[call]);
        for (int64_t i = 0; i < counts[call]; ++i) want[i] += in[i];
      }
      for (int64_t i = 0; i < counts[call]; ++i) {
        ASSERT_NEAR(buf[i], want[i], 1e-5) << "rank " << rank << " i " << i;
      }
    }
  });
}

TEST_P(GlooRanksTest, AllReduceSumInt32Exact) {
  auto comms = CreateGroup(&store_, UniquePrefix("allreduce_i32"), n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    for (int64_t count : {1, 1001}) {
      std::vector<int32_t> buf(count);
      for (int64_t i = 0; i < count; ++i) buf[i] = static_cast<int32_t>(1 + i * 3 + rank * 100000);
      ASSERT_TRUE(c.AllReduceSum(buf.data(), count, DataType::kI32).ok());
      for (int64_t i = 0; i < count; ++i) {
        int32_t want = 0;
        for (int r = 0; r < n(); ++r) want += static_cast<int32_t>(1 + i * 3 + r * 100000);
        ASSERT_EQ(buf[i], want);
      }
    }
  });
}

TEST_P(GlooRanksTest, AllGatherConcatenatesRanksInOrderForAnyType) {
  auto comms = CreateGroup(&store_, UniquePrefix("allgather"), n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  struct Case {
    int64_t count;
    DataType type;
  };
  const std::vector<Case> cases = {{1, DataType::kF32},     {7, DataType::kU8},
                                   {1001, DataType::kBF16}, {300000, DataType::kF32},
                                   {7, DataType::kF16},     {1001, DataType::kI32}};
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    for (int call = 0; call < static_cast<int>(cases.size()); ++call) {
      const int64_t bytes =
          cases[call].count * static_cast<int64_t>(DataTypeSize(cases[call].type));
      std::vector<uint8_t> in = ByteInput(rank, call, bytes);
      std::vector<uint8_t> out(bytes * n(), 0);
      ASSERT_TRUE(c.AllGather(in.data(), out.data(), cases[call].count, cases[call].type).ok());
      for (int r = 0; r < n(); ++r) {
        std::vector<uint8_t> want = ByteInput(r, call, bytes);
        ASSERT_EQ(0, std::memcmp(out.data() + r * bytes, want.data(), bytes))
            << "rank " << rank << " call " << call << " block " << r;
      }
    }
  });
}

TEST_P(GlooRanksTest, BroadcastFromEveryRoot) {
  auto comms = CreateGroup(&store_, UniquePrefix("broadcast"), n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    int call = 0;
    for (int root = 0; root < n(); ++root) {
      for (int64_t count : {1, 7, 1001, 300000}) {
        std::vector<uint8_t> buf = ByteInput(rank, call, count * 2);
        ASSERT_TRUE(c.Broadcast(buf.data(), count, DataType::kBF16, root).ok());
        ASSERT_EQ(buf, ByteInput(root, call, count * 2)) << "root " << root << " count " << count;
        ++call;
      }
    }
  });
}

// A pipeline 0 -> 1 -> ... -> n-1 where each rank adds its contribution, with
// several messages of different sizes in flight to the same peer, then a ring
// shift in the other direction.
TEST_P(GlooRanksTest, SendRecvChainsBetweenNeighbours) {
  auto comms = CreateGroup(&store_, UniquePrefix("sendrecv"), n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  if (n() == 1) {  // no neighbour: a peer that is not another rank is refused
    float x = 1.0f;
    EXPECT_EQ(comms[0]->Send(&x, 1, DataType::kF32, 0).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(comms[0]->Recv(&x, 1, DataType::kF32, 0).code(), absl::StatusCode::kInvalidArgument);
    return;
  }
  const std::vector<int64_t> counts = {7, 300000, 1, 1001};
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    for (int m = 0; m < static_cast<int>(counts.size()); ++m) {
      std::vector<float> buf(counts[m]);
      if (rank > 0) {
        ASSERT_TRUE(c.Recv(buf.data(), counts[m], DataType::kF32, rank - 1).ok());
        std::vector<float> mine = SmallIntInput(rank, m, counts[m]);
        for (int64_t i = 0; i < counts[m]; ++i) buf[i] += mine[i];
      } else {
        buf = SmallIntInput(0, m, counts[m]);
      }
      if (rank + 1 < n()) {
        ASSERT_TRUE(c.Send(buf.data(), counts[m], DataType::kF32, rank + 1).ok());
      } else {
        std::vector<float> want(counts[m], 0.0f);
        for (int r = 0; r < n(); ++r) {
          std::vector<float> in = SmallIntInput(r, m, counts[m]);
          for (int64_t i = 0; i < counts[m]; ++i) want[i] += in[i];
        }
        ASSERT_EQ(buf, want) << "message " << m;
      }
    }
    // Ring shift downwards: even ranks send first, odd ranks receive first.
    const int to = (rank + n() - 1) % n();
    const int from = (rank + 1) % n();
    std::vector<uint8_t> out = ByteInput(rank, 99, 1001);
    std::vector<uint8_t> in(1001);
    if (rank % 2 == 0) {
      ASSERT_TRUE(c.Send(out.data(), 1001, DataType::kU8, to).ok());
      ASSERT_TRUE(c.Recv(in.data(), 1001, DataType::kU8, from).ok());
    } else {
      ASSERT_TRUE(c.Recv(in.data(), 1001, DataType::kU8, from).ok());
      ASSERT_TRUE(c.Send(out.data(), 1001, DataType::kU8, to).ok());
    }
    ASSERT_EQ(in, ByteInput(from, 99, 1001));
    ASSERT_TRUE(c.Barrier().ok());
  });
}

TEST_P(GlooRanksTest, InvalidArgumentsNameTheProblemAndKeepTheCommunicatorUsable) {
  auto comms = CreateGroup(&store_, UniquePrefix("invalid"), n(), kOpTimeout);
  ASSERT_EQ(static_cast<int>(comms.size()), n());
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    std::vector<float> buf(8, 1.0f);
    absl::Status s = c.AllReduceSum(buf.data(), 8, DataType::kF16);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(s.message(), c.Describe())) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "f16")) << s;
    EXPECT_EQ(c.AllReduceSum(buf.data(), -1, DataType::kF32).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.AllReduceSum(nullptr, 8, DataType::kF32).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.Broadcast(buf.data(), 8, DataType::kF32, n()).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.Send(buf.data(), 8, DataType::kF32, rank).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.Recv(buf.data(), 8, DataType::kF32, n()).code(),
              absl::StatusCode::kInvalidArgument);
    ASSERT_TRUE(c.AllReduceSum(buf.data(), 8, DataType::kF32).ok());
    EXPECT_EQ(buf, std::vector<float>(8, static_cast<float>(n())));
  });
}

INSTANTIATE_TEST_SUITE_P(Ranks, GlooRanksTest, ::testing::Values(1, 2, 3, 4),
                         [](const auto& info) { return absl::StrCat(info.param, "ranks"); });

TEST(GlooCommunicatorTest, SizeOneIsLocal) {
  GlooCommunicatorConfig config;  // no store needed for one rank
  config.label = "solo";
  auto c = CreateGlooCommunicator(config);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<float> buf = {1.5f, -2.0f, 3.0f};
  ASSERT_TRUE((*c)->AllReduceSum(buf.data(), 3, DataType::kF32).ok());
  EXPECT_EQ(buf, (std::vector<float>{1.5f, -2.0f, 3.0f}));
  std::vector<float> out(3);
  ASSERT_TRUE((*c)->AllGather(buf.data(), out.data(), 3, DataType::kF32).ok());
  EXPECT_EQ(out, buf);
  ASSERT_TRUE((*c)->Broadcast(buf.data(), 3, DataType::kF32, 0).ok());
  ASSERT_TRUE((*c)->Barrier().ok());
  EXPECT_EQ((*c)->Send(buf.data(), 3, DataType::kF32, 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GlooCommunicatorTest, RankThatNeverJoinsFailsRendezvousWithinTimeout) {
  InMemoryStore store;
  const std::string prefix = UniquePrefix("missing");
  GlooCommunicatorConfig config;
  config.store = &store;
  config.prefix = prefix;
  config.rank = 0;
  config.size = 2;
  config.bind_address = "127.0.0.1";
  config.timeout = absl::Seconds(2);
  config.label = "missing-peer";
  const absl::Time start = absl::Now();
  auto c = CreateGlooCommunicator(config);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_TRUE(absl::StartsWith(c.status().message(), "gloo/tcp rank 0 of 2 on ")) << c.status();
  // The key rank 1 would have set (Gloo names it by the rank number).
  EXPECT_TRUE(absl::StrContains(c.status().message(), absl::StrCat("'", prefix, "/1'")))
      << c.status();
  EXPECT_LT(took, absl::Seconds(4));
}

// The ops a surviving rank may be in when its peer leaves.
enum class Op { kAllReduce, kAllReduceLarge, kAllGather, kBroadcast, kRecv, kSend, kBarrier };

absl::Status RunOp(Op op, Communicator& c) {
  std::vector<float> buf(op == Op::kAllReduceLarge ? 300000 : 1001, 1.0f);
  std::vector<float> out(buf.size() * c.size());
  const int peer = (c.rank() + 1) % c.size();
  switch (op) {
    case Op::kAllReduce:
    case Op::kAllReduceLarge:
      return c.AllReduceSum(buf.data(), buf.size(), DataType::kF32);
    case Op::kAllGather:
      return c.AllGather(buf.data(), out.data(), buf.size(), DataType::kF32);
    case Op::kBroadcast:
      return c.Broadcast(buf.data(), buf.size(), DataType::kF32, c.size() - 1);
    case Op::kRecv:
      return c.Recv(buf.data(), buf.size(), DataType::kF32, peer);
    case Op::kSend:
      return c.Send(buf.data(), buf.size(), DataType::kF32, peer);
    case Op::kBarrier:
      return c.Barrier();
  }
  return absl::InternalError("unreachable");
}

class PeerLeavesTest : public ::testing::TestWithParam<Op> {};

TEST_P(PeerLeavesTest, NextOperationFailsWithDescribeInsteadOfHanging) {
  InMemoryStore store;
  const absl::Duration timeout = absl::Seconds(5);
  auto comms = CreateGroup(&store, UniquePrefix("leave"), 2, timeout);
  ASSERT_EQ(comms.size(), 2u);
  // Both ranks run the op once successfully (Send/Recv pair up), so cached
  // all-reduce plans exist when the peer leaves.
  RunOnRanks(comms, [&](int rank, Communicator& c) {
    Op op = GetParam();
    if (op == Op::kRecv || op == Op::kSend) {
      op = (rank == 0) == (GetParam() == Op::kRecv) ? Op::kSend : Op::kRecv;
      if (op == Op::kSend) {
        std::vector<float> buf(1001, 1.0f);
        ASSERT_TRUE(c.Send(buf.data(), 1001, DataType::kF32, 1 - rank).ok());
        return;
      }
    }
    ASSERT_TRUE(RunOp(op, c).ok());
  });
  comms[1].reset();  // the peer leaves
  const absl::Time start = absl::Now();
  absl::Status s = RunOp(GetParam(), *comms[0]);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StartsWith(s.message(), comms[0]->Describe())) << s;
  EXPECT_LT(took, timeout + absl::Seconds(3)) << s;
  // Unusable afterwards, and says why.
  absl::Status again = RunOp(Op::kAllReduce, *comms[0]);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_TRUE(absl::StartsWith(again.message(), comms[0]->Describe())) << again;
  comms[0].reset();  // destroying a failed communicator neither hangs nor throws
}

INSTANTIATE_TEST_SUITE_P(Ops, PeerLeavesTest,
                         ::testing::Values(Op::kAllReduce, Op::kAllReduceLarge, Op::kAllGather,
                                           Op::kBroadcast, Op::kRecv, Op::kSend, Op::kBarrier));

}  // namespace
}  // namespace strata::parallel
