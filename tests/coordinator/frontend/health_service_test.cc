// HealthService over a real in-process gRPC server, called through the
// generated grpc.health.v1 stubs: Check per name (NOT_FOUND for unknown
// names), Watch (current status, changes, ends on cancel and on Shutdown),
// the Watch bound, and API keys when configured. Every call is bounded.
#include "coordinator/frontend/health_service.h"

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace strata::coordinator::frontend {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kKey[] = "sk-health-test-key-0123";

void Bound(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

// Polls `done` for up to 5 s.
template <typename F>
bool Eventually(F done) {
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

class HealthServiceTest : public ::testing::Test {
 protected:
  void Start(HealthService::Options options) {
    options.services = {"inference.GRPCInferenceService", "strata.v1.Strata"};
    options.watch_poll = absl::Milliseconds(20);
    health_ = std::make_unique<HealthService>(std::move(options));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(health_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = Health::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (health_) health_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  grpc::Status Check(const std::string& service, HealthCheckResponse* response, const std::string& key = "") {
    grpc::ClientContext ctx;
    Bound(ctx);
    if (!key.empty()) ctx.AddMetadata("authorization", std::string("Bearer ") + key);
    HealthCheckRequest request;
    request.set_service(service);
    return stub_->Check(&ctx, request, response);
  }
  HealthCheckResponse::ServingStatus Status(const std::string& service) {
    HealthCheckResponse response;
    const grpc::Status s = Check(service, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.status();
  }

  // An open Watch: its context, reader and first message.
  struct Watcher {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;
  };
  std::unique_ptr<Watcher> OpenWatch(const std::string& service, const std::string& key = "") {
    auto w = std::make_unique<Watcher>();
    Bound(w->ctx, 20);
    if (!key.empty()) w->ctx.AddMetadata("x-api-key", key);
    HealthCheckRequest request;
    request.set_service(service);
    w->reader = stub_->Watch(&w->ctx, request);
    return w;
  }

  std::unique_ptr<HealthService> health_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(HealthServiceTest, CheckAnswersPerNameAndNotFoundForUnknownNames) {
  Start({});
  for (const char* name : {"", "inference.GRPCInferenceService", "strata.v1.Strata"}) {
    EXPECT_EQ(Status(name), HealthCheckResponse::NOT_SERVING) << name;
  }
  health_->SetServing(true);
  for (const char* name : {"", "inference.GRPCInferenceService", "strata.v1.Strata"}) {
    EXPECT_EQ(Status(name), HealthCheckResponse::SERVING) << name;
  }
  HealthCheckResponse response;
  const grpc::Status unknown = Check("no.such.Service", &response);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(unknown.error_message(), "service name unknown");
  health_->SetServing(false);
  EXPECT_EQ(Status(""), HealthCheckResponse::NOT_SERVING);
}

TEST_F(HealthServiceTest, WatchStreamsChangesAndEndsWhenTheClientCancels) {
  Start({});
  auto w = OpenWatch("strata.v1.Strata");
  HealthCheckResponse r;
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::NOT_SERVING);
  health_->SetServing(true);
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  health_->SetServing(true);  // no change: nothing sent
  health_->SetServing(false);
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(health_->open_watches(), 1);
  w->ctx.TryCancel();
  EXPECT_EQ(w->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return health_->open_watches() == 0; }));
}

TEST_F(HealthServiceTest, WatchOfAnUnknownNameSaysServiceUnknownAndWaits) {
  Start({});
  auto w = OpenWatch("no.such.Service");
  HealthCheckResponse r;
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(health_->open_watches(), 1);  // still open
  w->ctx.TryCancel();
  w->reader->Finish();
}

TEST_F(HealthServiceTest, ShutdownEndsWatchesAndDoesNotHoldTheServer) {
  Start({});
  health_->SetServing(true);
  auto w = OpenWatch("");
  HealthCheckResponse r;
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  health_->Shutdown();
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(w->reader->Read(&r));
  const grpc::Status end = w->reader->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE);
  // After Shutdown: NOT_SERVING for good, new Watches refused.
  health_->SetServing(true);
  EXPECT_EQ(Status(""), HealthCheckResponse::NOT_SERVING);
  auto late = OpenWatch("");
  EXPECT_FALSE(late->reader->Read(&r));
  EXPECT_EQ(late->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  // A Watch open at Shutdown() ends at once, so the server stops well within its deadline.
  const auto t0 = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST_F(HealthServiceTest, ServerShutdownWithoutHealthShutdownStillEndsAWatch) {
  // A forgotten Shutdown() costs the server's deadline, never a hang.
  Start({});
  auto w = OpenWatch("");
  HealthCheckResponse r;
  ASSERT_TRUE(w->reader->Read(&r));
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  EXPECT_FALSE(w->reader->Read(&r));
  EXPECT_FALSE(w->reader->Finish().ok());
  EXPECT_TRUE(Eventually([&] { return health_->open_watches() == 0; }));
}

TEST_F(HealthServiceTest, WatchesAreBounded) {
  HealthService::Options options;
  options.max_watches = 2;
  Start(options);
  std::vector<std::unique_ptr<Watcher>> open;
  HealthCheckResponse r;
  for (int i = 0; i < 2; ++i) {
    open.push_back(OpenWatch(""));
    ASSERT_TRUE(open.back()->reader->Read(&r));
  }
  EXPECT_EQ(health_->open_watches(), 2);
  auto third = OpenWatch("");
  EXPECT_FALSE(third->reader->Read(&r));
  const grpc::Status refused = third->reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("too many health Watch streams"), std::string::npos);
  // Check is not bounded by Watches.
  EXPECT_EQ(Status(""), HealthCheckResponse::NOT_SERVING);
  // A cancelled Watch frees its place.
  open[0]->ctx.TryCancel();
  open[0]->reader->Finish();
  ASSERT_TRUE(Eventually([&] { return health_->open_watches() == 1; }));
  auto again = OpenWatch("");
  ASSERT_TRUE(again->reader->Read(&r));
  for (auto* w : {open[1].get(), again.get()}) {
    w->ctx.TryCancel();
    w->reader->Finish();
  }
}

TEST_F(HealthServiceTest, KeysAreRequiredWhenConfigured) {
  const std::string path = ::testing::TempDir() + "/health_service_test_keys";
  {
    std::ofstream out(path);
    out << "probe:" << kKey << "\n";
  }
  auto keys = ApiKeys::Load(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  HealthService::Options options;
  options.api_keys = keys->get();
  Start(options);
  health_->SetServing(true);

  HealthCheckResponse response;
  grpc::Status s = Check("", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "missing API key: send 'authorization: Bearer <key>'");
  s = Check("", &response, "sk-not-the-right-key-000");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "invalid API key");
  // Unknown names are not told apart from known ones without a key.
  EXPECT_EQ(Check("no.such.Service", &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  s = Check("", &response, kKey);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  HealthCheckResponse r;
  auto anonymous = OpenWatch("");
  EXPECT_FALSE(anonymous->reader->Read(&r));
  EXPECT_EQ(anonymous->reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(health_->open_watches(), 0);
  auto keyed = OpenWatch("", kKey);
  ASSERT_TRUE(keyed->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  keyed->ctx.TryCancel();
  keyed->reader->Finish();
  EXPECT_TRUE((*keys)->Accepts(kKey));
  EXPECT_FALSE((*keys)->Accepts("sk-not-the-right-key-000"));
  EXPECT_FALSE((*keys)->Accepts(""));
}

}  // namespace
}  // namespace strata::coordinator::frontend
