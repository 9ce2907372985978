// RendezvousService behind a real gRPC server on 127.0.0.1 (port picked by
// the OS), reached through CoordinatorStoreClient: set/get, waiting, limits,
// ErasePrefix, shutdown, and Gloo ranks meeting through it.
#include "coordinator/rendezvous_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parallel/coordinator_store_client.h"
#include "parallel/gloo_communicator.h"
#include "tests/parallel/gloo_test_group.h"

namespace strata {
namespace {

using coordinator::RendezvousService;
using parallel::CoordinatorStoreClient;

class RendezvousServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    target_ = "127.0.0.1:" + std::to_string(port_);
    auto a = CoordinatorStoreClient::Create(target_);
    auto b = CoordinatorStoreClient::Create(target_);
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = std::move(*a);
    b_ = std::move(*b);
  }
  void TearDown() override { ShutdownServer(); }
  void ShutdownServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }

  RendezvousService service_;
  int port_ = 0;
  std::string target_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CoordinatorStoreClient> a_;
  std::unique_ptr<CoordinatorStoreClient> b_;
};

TEST_F(RendezvousServiceTest, SetOnOneClientGetOnTheOther) {
  ASSERT_TRUE(a_->Set("replica-0/gen-1/0", std::string("addr\0ess", 8)).ok());
  auto v = b_->Get("replica-0/gen-1/0", absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::string("addr\0ess", 8));
  ASSERT_TRUE(b_->Set("replica-0/gen-1/0", "overwritten").ok());
  v = a_->Get("replica-0/gen-1/0", absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "overwritten");
  EXPECT_EQ(service_.size(), 1u);
}

TEST_F(RendezvousServiceTest, GetWaitsForALaterSetFromAnotherThread) {
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_TRUE(a_->Set("late", "value").ok());
  });
  const absl::Time start = absl::Now();
  auto v = b_->Get("late", absl::Seconds(10));
  const absl::Duration took = absl::Now() - start;
  setter.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "value");
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(RendezvousServiceTest, GetOfAKeyNobodySetsTimesOutNamingTheKey) {
  const absl::Time start = absl::Now();
  auto v = b_->Get("nobody/sets/this", absl::Milliseconds(500));
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded) << v.status();
  EXPECT_TRUE(absl::StrContains(v.status().message(), "'nobody/sets/this'")) << v.status();
  EXPECT_TRUE(absl::StartsWith(v.status().message(), "rendezvous store at " + target_))
      << v.status();
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(RendezvousServiceTest, KeyAndValueLimitsAreEnforcedAndNamed) {
  EXPECT_TRUE(a_->Set(std::string(256, 'k'), "ok").ok());
  absl::Status s = a_->Set(std::string(257, 'k'), "too long a key");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "limit of 256 bytes")) << s;
  auto g = a_->Get(std::string(257, 'k'), absl::Milliseconds(100));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << g.status();

  EXPECT_EQ(a_->Set("", "x").code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(a_->Set("big", std::string(size_t{1} << 20, 'v')).ok());
  auto big = b_->Get("big", absl::Seconds(5));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->size(), size_t{1} << 20);
  s = a_->Set("bigger", std::string((size_t{1} << 20) + 1, 'v'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "limit of 1048576 bytes")) << s;
}

TEST_F(RendezvousServiceTest, ErasePrefixDropsOnlyThatGeneration) {
  ASSERT_TRUE(a_->Set("replica-0/gen-1/0", "old0").ok());
  ASSERT_TRUE(a_->Set("replica-0/gen-1/1", "old1").ok());
  ASSERT_TRUE(a_->Set("replica-0/gen-2/0", "new0").ok());
  service_.ErasePrefix("replica-0/gen-1/");
  EXPECT_EQ(service_.size(), 1u);
  EXPECT_EQ(b_->Get("replica-0/gen-1/0", absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  auto v = b_->Get("replica-0/gen-2/0", absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "new0");
}

TEST_F(RendezvousServiceTest, ShutdownReleasesAWaitingGet) {
  absl::StatusOr<std::string> v;
  std::thread waiter([&] { v = b_->Get("never", absl::Seconds(30)); });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  ShutdownServer();
  waiter.join();
  EXPECT_FALSE(v.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << v.status();
}

TEST(CoordinatorStoreClientTest, UnreachableCoordinatorIsAnErrorNotAHang) {
  EXPECT_EQ(CoordinatorStoreClient::Create("").status().code(), absl::StatusCode::kInvalidArgument);
  auto client = CoordinatorStoreClient::Create("127.0.0.1:1");
  ASSERT_TRUE(client.ok());
  const absl::Time start = absl::Now();
  auto v = (*client)->Get("k", absl::Seconds(2));
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StartsWith(v.status().message(), "rendezvous store at 127.0.0.1:1"))
      << v.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_FALSE((*client)->Set("k", "v").ok());
}

// Three Gloo ranks as threads, each with its own client of the real service.
TEST_F(RendezvousServiceTest, GlooRanksMeetThroughTheService) {
  constexpr int kRanks = 3;
  std::vector<std::unique_ptr<CoordinatorStoreClient>> clients;
  for (int r = 0; r < kRanks; ++r) {
    auto c = CoordinatorStoreClient::Create(target_);
    ASSERT_TRUE(c.ok());
    clients.push_back(std::move(*c));
  }
  std::vector<absl::StatusOr<std::unique_ptr<parallel::Communicator>>> made(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      parallel::GlooCommunicatorConfig config;
      config.store = clients[r].get();
      config.prefix = "replica-0/gen-7/tp/stage0";
      config.rank = r;
      config.size = kRanks;
      config.bind_address = "127.0.0.1";
      config.timeout = absl::Seconds(20);
      config.label = "tp group replica-0/gen-7/stage0";
      made[r] = parallel::CreateGlooCommunicator(config);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<std::unique_ptr<parallel::Communicator>> comms;
  for (auto& m : made) {
    ASSERT_TRUE(m.ok()) << m.status();
    comms.push_back(std::move(*m));
  }
  EXPECT_GE(service_.size(), static_cast<size_t>(kRanks));  // at least one key per rank
  parallel::testing::RunOnRanks(comms, [&](int rank, parallel::Communicator& c) {
    std::vector<float> buf(1001);
    for (int i = 0; i < 1001; ++i) buf[i] = static_cast<float>(1 + (i + rank) % 7);
    ASSERT_TRUE(c.AllReduceSum(buf.data(), 1001, parallel::DataType::kF32).ok());
    for (int i = 0; i < 1001; ++i) {
      float want = 0;
      for (int r = 0; r < kRanks; ++r) want += static_cast<float>(1 + (i + r) % 7);
      ASSERT_EQ(buf[i], want) << i;
    }
    int32_t mine = 100 + rank;
    std::vector<int32_t> all(kRanks);
    ASSERT_TRUE(c.AllGather(&mine, all.data(), 1, parallel::DataType::kI32).ok());
    EXPECT_EQ(all, (std::vector<int32_t>{100, 101, 102}));
  });
  service_.ErasePrefix("replica-0/gen-7/");
  EXPECT_EQ(service_.size(), 0u);
}

}  // namespace
}  // namespace strata
