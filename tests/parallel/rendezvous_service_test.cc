// RendezvousService behind a real gRPC server on 127.0.0.1 (port picked by
// the OS), reached through CoordinatorStoreClient: set/get, waiting, limits,
// group scoping (store tokens, prefixes, join token), closing a group,
// shutdown, and Gloo ranks meeting through it.
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
using coordinator::WorkerAdmission;
using parallel::CoordinatorStoreClient;

constexpr char kGroup[] = "replica-0/gen-1/";
constexpr char kGroupToken[] = "group-one-token-0123456789abcdef";

class RendezvousServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(WorkerAdmission::Open(), ""); }
  void TearDown() override { ShutdownServer(); }
  // A fresh service (with `admission`) and server; a_ and b_ are clients of
  // group kGroup presenting `join_token`.
  void Start(WorkerAdmission admission, const std::string& join_token) {
    ShutdownServer();
    admission_ = std::move(admission);
    service_ = std::make_unique<RendezvousService>(&admission_);
    service_->OpenGroup(kGroup, kGroupToken, 2);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    target_ = "127.0.0.1:" + std::to_string(port_);
    a_ = Client(kGroupToken, join_token);
    b_ = Client(kGroupToken, join_token);
  }
  std::unique_ptr<CoordinatorStoreClient> Client(const std::string& store_token, const std::string& join_token = "") {
    auto c = CoordinatorStoreClient::Create(target_, join_token);
    EXPECT_TRUE(c.ok());
    (*c)->set_store_token(store_token);
    return std::move(*c);
  }
  void ShutdownServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }
  static std::string Key(const std::string& rest) { return kGroup + rest; }

  WorkerAdmission admission_ = WorkerAdmission::Open();
  std::unique_ptr<RendezvousService> service_;
  int port_ = 0;
  std::string target_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CoordinatorStoreClient> a_;
  std::unique_ptr<CoordinatorStoreClient> b_;
};

TEST_F(RendezvousServiceTest, SetOnOneClientGetOnTheOther) {
  ASSERT_TRUE(a_->Set(Key("0"), std::string("addr\0ess", 8)).ok());
  auto v = b_->Get(Key("0"), absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::string("addr\0ess", 8));
  ASSERT_TRUE(b_->Set(Key("0"), "overwritten").ok());
  v = a_->Get(Key("0"), absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "overwritten");
  EXPECT_EQ(service_->size(), 1u);
}

TEST_F(RendezvousServiceTest, GetWaitsForALaterSetFromAnotherThread) {
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_TRUE(a_->Set(Key("late"), "value").ok());
  });
  const absl::Time start = absl::Now();
  auto v = b_->Get(Key("late"), absl::Seconds(10));
  const absl::Duration took = absl::Now() - start;
  setter.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "value");
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(RendezvousServiceTest, GetOfAKeyNobodySetsTimesOutNamingTheKey) {
  const absl::Time start = absl::Now();
  auto v = b_->Get(Key("nobody/sets/this"), absl::Milliseconds(500));
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded) << v.status();
  EXPECT_TRUE(absl::StrContains(v.status().message(), "nobody/sets/this'")) << v.status();
  EXPECT_TRUE(absl::StartsWith(v.status().message(), "rendezvous store at " + target_))
      << v.status();
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(RendezvousServiceTest, KeyAndValueLimitsAreEnforcedAndNamed) {
  EXPECT_TRUE(a_->Set(Key(std::string(256 - 16, 'k')), "ok").ok());
  absl::Status s = a_->Set(Key(std::string(257 - 16, 'k')), "too long a key");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "limit of 256 bytes")) << s;
  auto g = a_->Get(Key(std::string(257 - 16, 'k')), absl::Milliseconds(100));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << g.status();

  EXPECT_EQ(a_->Set("", "x").code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(a_->Set(Key("big"), std::string(size_t{1} << 20, 'v')).ok());
  auto big = b_->Get(Key("big"), absl::Seconds(5));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->size(), size_t{1} << 20);
  s = a_->Set(Key("bigger"), std::string((size_t{1} << 20) + 1, 'v'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "limit of 1048576 bytes")) << s;
}

TEST_F(RendezvousServiceTest, CloseGroupDropsOnlyThatGroupsKeysAndToken) {
  service_->OpenGroup("replica-0/gen-2/", "group-two-token-0123456789abcdef", 2);
  auto c = Client("group-two-token-0123456789abcdef");
  ASSERT_TRUE(a_->Set(Key("0"), "old0").ok());
  ASSERT_TRUE(a_->Set(Key("1"), "old1").ok());
  ASSERT_TRUE(c->Set("replica-0/gen-2/0", "new0").ok());
  EXPECT_EQ(service_->size(), 3u);
  service_->CloseGroup(kGroup);
  EXPECT_EQ(service_->size(), 1u);
  EXPECT_EQ(service_->groups(), 1u);
  // The old group's token is dead with it.
  EXPECT_EQ(b_->Get(Key("0"), absl::Milliseconds(100)).status().code(), absl::StatusCode::kPermissionDenied);
  auto v = c->Get("replica-0/gen-2/0", absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "new0");
}

TEST_F(RendezvousServiceTest, CloseGroupReleasesItsWaitingGets) {
  absl::StatusOr<std::string> v;
  std::thread waiter([&] { v = b_->Get(Key("never"), absl::Seconds(30)); });
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  service_->CloseGroup(kGroup);
  waiter.join();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kAborted) << v.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(RendezvousServiceTest, OnlyTheGroupsTokenReachesItsKeys) {
  ASSERT_TRUE(a_->Set(Key("addr"), "10.0.0.1:1234").ok());
  service_->OpenGroup("replica-1/gen-1/", "other-group-token-0123456789abcd", 2);
  auto no_token = Client("");
  absl::Status s = no_token->Set(Key("addr"), "evil");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "x-strata-store-token")) << s;
  EXPECT_EQ(no_token->Get(Key("addr"), absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto guessed = Client("group-one-token-0123456789abcdeX");
  EXPECT_EQ(guessed->Get(Key("addr"), absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Another live group's token opens its own prefix only.
  auto other = Client("other-group-token-0123456789abcd");
  s = other->Set(Key("addr"), "evil");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "outside this worker group's prefix 'replica-1/gen-1/'")) << s;
  EXPECT_TRUE(other->Set("replica-1/gen-1/addr", "ok").ok());
  // A rank's own token cannot leave its prefix either.
  EXPECT_EQ(a_->Set("replica-1/gen-1/addr", "evil").code(), absl::StatusCode::kPermissionDenied);
  auto v = b_->Get(Key("addr"), absl::Seconds(1));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "10.0.0.1:1234");
}

TEST_F(RendezvousServiceTest, AGroupHoldsAtMost16MiBAnd1024Keys) {
  const std::string mib(size_t{1} << 20, 'v');
  int stored = 0;
  absl::Status refused;
  for (int i = 0; i < 150; ++i) {
    absl::Status s = a_->Set(Key("big/" + std::to_string(i)), mib);
    if (!s.ok()) {
      refused = s;
      break;
    }
    ++stored;
  }
  EXPECT_EQ(stored, 15);  // 16 x (1 MiB + key) is over 16 MiB
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "limit of 16777216 bytes")) << refused;
  // Overwriting a key within the budget still works; so does another group.
  EXPECT_TRUE(a_->Set(Key("big/0"), "small").ok());
  for (int i = 1; i < 15; ++i) ASSERT_TRUE(a_->Set(Key("big/" + std::to_string(i)), "").ok());
  int keys = static_cast<int>(service_->size());
  absl::Status too_many;
  for (int i = 0; i < 1100 && too_many.ok(); ++i) {
    too_many = a_->Set(Key("k/" + std::to_string(i)), "x");
    if (too_many.ok()) ++keys;
  }
  EXPECT_EQ(keys, 1024);
  EXPECT_EQ(too_many.code(), absl::StatusCode::kResourceExhausted) << too_many;
  EXPECT_TRUE(absl::StrContains(too_many.message(), "limit of 1024 keys")) << too_many;
}

TEST_F(RendezvousServiceTest, ParkedGetsAreBoundedPerGroup) {
  // The group has 2 ranks: at most 4 Gets wait at once.
  std::vector<std::thread> waiters;
  std::vector<absl::StatusOr<std::string>> got(4);
  std::vector<std::unique_ptr<CoordinatorStoreClient>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(Client(kGroupToken));
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] { got[i] = clients[i]->Get(Key("later"), absl::Seconds(20)); });
  }
  absl::SleepFor(absl::Milliseconds(500));
  auto fifth = a_->Get(Key("later"), absl::Seconds(5));
  EXPECT_EQ(fifth.status().code(), absl::StatusCode::kResourceExhausted) << fifth.status();
  EXPECT_TRUE(absl::StrContains(fifth.status().message(), "limit is 4")) << fifth.status();
  ASSERT_TRUE(b_->Set(Key("later"), "now").ok());
  for (auto& t : waiters) t.join();
  for (auto& g : got) EXPECT_TRUE(g.ok()) << g.status();
  // The slots are free again, and a key already set needs none.
  EXPECT_TRUE(a_->Get(Key("later"), absl::Seconds(1)).ok());
}

TEST_F(RendezvousServiceTest, WithAJoinTokenEveryCallMustCarryIt) {
  Start(WorkerAdmission::WithJoinToken("join-token-0123456789abcdef"), "join-token-0123456789abcdef");
  EXPECT_TRUE(a_->Set(Key("0"), "v").ok());
  auto anonymous = Client(kGroupToken, "");
  absl::Status s = anonymous->Set(Key("0"), "evil");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  auto wrong = Client(kGroupToken, "join-token-0123456789abcdeX");
  s = wrong->Set(Key("0"), "evil");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "join-token-0123456789abcde")) << s;
  auto v = b_->Get(Key("0"), absl::Seconds(1));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "v");
}

TEST_F(RendezvousServiceTest, ShutdownReleasesAWaitingGet) {
  absl::StatusOr<std::string> v;
  std::thread waiter([&] { v = b_->Get(Key("never"), absl::Seconds(30)); });
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
  service_->OpenGroup("replica-0/gen-7/", "gloo-group-token-0123456789abcde", kRanks);
  std::vector<std::unique_ptr<CoordinatorStoreClient>> clients;
  for (int r = 0; r < kRanks; ++r) clients.push_back(Client("gloo-group-token-0123456789abcde"));
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
  EXPECT_GE(service_->size(), static_cast<size_t>(kRanks));  // at least one key per rank
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
  service_->CloseGroup("replica-0/gen-7/");
  service_->CloseGroup(kGroup);
  EXPECT_EQ(service_->size(), 0u);
}

}  // namespace
}  // namespace strata
